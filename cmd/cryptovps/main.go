// Command cryptovps runs the CryptoVPS API (serve) and the operator tools
// that work on the same data (accounts ...).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

const usage = `cryptovps: crypto-funded cloud servers for AI agents

usage:
  cryptovps serve [flags]                          run the API (sandbox mode by default)
  cryptovps accounts suspend EMAIL --reason TEXT   abuse hold: 403 on every mutation
  cryptovps accounts unsuspend EMAIL --reason TEXT lift the hold
  cryptovps accounts set-limit EMAIL N             change the server limit
  cryptovps accounts show EMAIL                    show an account
  cryptovps accounts forget EMAIL|ID [--forfeit-balance]
                                                   forget an account: destroy the key of its personal data (erasure)
  cryptovps accounts pending-limits                limit requests waiting for a decision
  cryptovps accounts approve-limit EMAIL ID [--reason NOTE]
                                                   raise the limit as the request asked
  cryptovps accounts deny-limit EMAIL ID --reason NOTE
                                                   deny a limit request
  cryptovps topups review                          top-ups whose money was not (all) credited automatically
  cryptovps topups credit TOPUP --reason TEXT [--amount USD]
                                                   credit one by hand (audited: the operator and reason are logged)
  cryptovps topups dismiss TOPUP --reason TEXT     close its review without crediting
  cryptovps audit [flags]                          check the books from the whole log; non-zero exit on a violation
  cryptovps ledger export [--from T] [--to T] [--account EMAIL|ID] [--format csv|jsonl]
                                                   one row per posting, for accounting tools
  cryptovps replay --account EMAIL|ID [--until T] [--explain]
                                                   an account as it stood at T; --explain its ledger vs the billing rules
  cryptovps projections rebuild [flags]            drop and rebuild the PostgreSQL read models from the log
  cryptovps projections status [flags]             each read model's checkpoint against the head of the log
  cryptovps eventstore copy --from DIR --to URL    copy the embedded event store to KurrentDB
  cryptovps backup --to FILE                       consistent online copy of the embedded event store
  cryptovps restore-check FILE                     open a backup read-only and audit it; non-zero exit on damage

Every flag has an environment variable: --data-dir is CRYPTOVPS_DATA_DIR.
Run "cryptovps serve -h" for the flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cryptovps:", err)
		os.Exit(1)
	}
}

// run runs one command. Asking any command for help (-h, --help) prints its
// usage and succeeds.
func run(args []string, stdout, stderr io.Writer) error {
	err := dispatch(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	// Commands made of subcommands have no flags of their own to print:
	// their help is their lines of the usage.
	if len(args) > 1 && isHelp(args[1]) && slices.Contains([]string{"accounts", "topups", "ledger", "projections", "eventstore"}, args[0]) {
		for line := range strings.Lines(usage) {
			if strings.HasPrefix(strings.TrimSpace(line), "cryptovps "+args[0]+" ") {
				fmt.Fprint(stdout, line)
			}
		}
		fmt.Fprintf(stdout, "Run \"cryptovps %s SUBCOMMAND -h\" for its flags.\n", args[0])
		return nil
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "accounts":
		return accounts(args[1:], stdout, stderr)
	case "topups":
		return topupsCmd(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "ledger":
		return ledgerCmd(args[1:], stdout, stderr)
	case "replay":
		return replayCmd(args[1:], stdout, stderr)
	case "projections":
		return projectionsCmd(args[1:], stdout, stderr)
	case "eventstore":
		return eventstoreCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "restore-check":
		return restoreCheckCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}
