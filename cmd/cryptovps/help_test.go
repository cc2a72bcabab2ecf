package main

import (
	"bytes"
	"strings"
	"testing"
)

// Asking any command for help prints its usage and succeeds, so scripts
// and people exploring the tool are not told they failed.
func TestHelpOnEveryCommandSucceeds(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"serve", "-h"}, {"serve", "--help"},
		{"accounts", "-h"}, {"accounts", "show", "-h"}, {"accounts", "suspend", "--help"},
		{"audit", "-h"}, {"ledger", "-h"}, {"ledger", "export", "-h"}, {"replay", "-h"},
		{"projections", "-h"}, {"projections", "rebuild", "-h"}, {"projections", "status", "-h"},
		{"eventstore", "-h"}, {"eventstore", "copy", "-h"},
		{"backup", "-h"}, {"restore-check", "-h"}, {"restore-check", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			if err := run(args, &out, &errOut); err != nil {
				t.Fatalf("run %v: %v\nstderr: %s", args, err, errOut.String())
			}
			if out.Len()+errOut.Len() == 0 {
				t.Fatalf("run %v printed no usage", args)
			}
		})
	}
}

// serve -h documents the operator surface and the public base URL.
func TestServeHelpNamesTheOperatorFlags(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := run([]string{"serve", "-h"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	help := out.String() + errOut.String()
	for _, want := range []string{"-admin-addr", "127.0.0.1:8081", "-admin-token-previous", "openssl rand -hex 32",
		"-base-url", "required in production"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve -h does not mention %q", want)
		}
	}
}
