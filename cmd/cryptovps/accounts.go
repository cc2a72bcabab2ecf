package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// accounts runs the operator commands through the running server's admin
// API: the embedded store is locked by the serving process, and going
// through the API keeps every change a decided, recorded event.
func accounts(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("accounts: suspend|unsuspend|set-limit|show|forget|pending-limits|approve-limit|deny-limit")
	}
	sub := args[0]
	fs := flag.NewFlagSet("accounts "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	reason := fs.String("reason", "", "why (required for suspend and unsuspend)")
	forfeit := fs.Bool("forfeit-balance", false, "forget: give up the account's balance (without it, an account holding money is not forgotten)")
	op, err := parseOperator(fs, args[1:])
	if err != nil {
		return err
	}
	server, tok, pos := op.server, op.token, op.pos
	if sub == "pending-limits" {
		return adminCall(server, tok, http.MethodGet, "/admin/limit-requests", nil, stdout)
	}
	if len(pos) < 1 {
		return fmt.Errorf("accounts %s: which account (EMAIL or id)?", sub)
	}
	who := url.PathEscape(pos[0])
	var method, path string
	var body any
	switch sub {
	case "suspend", "unsuspend":
		if *reason == "" {
			return fmt.Errorf("accounts %s: --reason is required", sub)
		}
		method, path, body = http.MethodPost, "/admin/accounts/"+who+"/"+sub, map[string]string{"reason": *reason}
	case "set-limit":
		if len(pos) != 2 {
			return errors.New("accounts set-limit EMAIL N")
		}
		n, err := strconv.Atoi(pos[1])
		if err != nil {
			return fmt.Errorf("limit %q: %w", pos[1], err)
		}
		method, path, body = http.MethodPost, "/admin/accounts/"+who+"/limit", map[string]int{"limit": n}
	case "show":
		method, path = http.MethodGet, "/admin/accounts/"+who
	case "forget":
		// Destroys the key of the account's personal data: its email can
		// never be read again, from any copy of the log.
		method, path, body = http.MethodPost, "/admin/accounts/"+who+"/forget", map[string]bool{"forfeitBalance": *forfeit}
	case "approve-limit", "deny-limit":
		if len(pos) != 2 {
			return fmt.Errorf("accounts %s EMAIL REQUEST_ID [--reason NOTE]", sub)
		}
		verb := strings.TrimSuffix(sub, "-limit")
		method, path = http.MethodPost, "/admin/accounts/"+who+"/limit-requests/"+url.PathEscape(pos[1])+"/"+verb
		body = map[string]string{"note": *reason}
	default:
		return fmt.Errorf("accounts: unknown command %q", sub)
	}
	return adminCall(server, tok, method, path, body, stdout)
}

// isBoolFlag reports whether arg (-name or --name) is a boolean flag of
// fs: it takes no value, so the next argument is not its.
func isBoolFlag(fs *flag.FlagSet, arg string) bool {
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func adminCall(server, token, method, path string, body any, stdout io.Writer) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(server, "/")+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("reach the API at %s: %w", server, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = notOperatorHint
		}
		return fmt.Errorf("%s %s: %d %s%s", method, path, resp.StatusCode, strings.TrimSpace(string(out)), hint)
	}
	_, err = fmt.Fprintln(stdout, strings.TrimSpace(string(out)))
	return err
}

// operator is an operator command's way to the running server's admin API,
// and its positional arguments.
type operator struct {
	server, token string
	pos           []string
}

// parseOperator reads an operator command's flags (declared on fs, plus
// the connection flags added here), which may come after its positional
// arguments, and finds the operator token.
func parseOperator(fs *flag.FlagSet, args []string) (operator, error) {
	server := fs.String("server", defaultOperatorServer(), "base URL of the running server's operator API (env CRYPTOVPS_SERVER; default: the operator listener serve's environment gives, else http://localhost:8080)")
	dataDir := fs.String("data-dir", "./data", "data dir holding the generated admin token")
	token := fs.String("admin-token", "", "operator token (default: read from the data dir)")
	var pos, flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && !isBoolFlag(fs, a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	if err := parse(fs, flags); err != nil {
		return operator{}, err
	}
	if v := os.Getenv("CRYPTOVPS_SERVER"); v != "" && !isSet(fs, "server") {
		*server = v
	}
	tok := *token
	if tok == "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, "admin-token"))
		if err != nil {
			return operator{}, fmt.Errorf("no --admin-token and none in the data dir: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	return operator{server: *server, token: tok, pos: pos}, nil
}
