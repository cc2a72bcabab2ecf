// Package security is the security regression suite: what a hostile client
// tries at the edges of the real binary, each attempt checked for its
// answer AND for leaving every account as it was (balance, ledger,
// servers, backups, top-ups, keys, limit requests). Forged, unsigned,
// expired and tampered tokens; another account's ids; forwarding headers
// that would dodge the per-IP limit; races for one top-up, one server, the
// last slot and the last cent; bodies too big or malformed; the operator
// surface (its own listener, its token, its failure limit, who took a
// snapshot).
//
// Every test starts `cryptovps serve` with tests/binary, as e2e does, and
// talks to it over HTTP through tests/apiclient, which checks every
// exchange against the OpenAPI document; nothing here wires a second stack.
package security

import (
	"os"
	"testing"

	"github.com/cryptovps/cryptovps/tests/binary"
)

func TestMain(m *testing.M) { os.Exit(binary.Main(m.Run)) }
