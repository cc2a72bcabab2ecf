package crash

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/binary"
)

// tally is what the checks of the log found, over all rounds.
type tally struct {
	rounds, events int
	lost, doubled  int
	audits         int
}

// checkLog reads the whole log of the stopped process's data dir and checks
// it against what was acknowledged: every acknowledged write is there
// (lost otherwise), nothing is there twice (doubled otherwise). It also
// records which Idempotency-Keys the log holds, so that a retry of a cut
// deploy can be told apart: a key in the log must replay.
func checkLog(t testing.TB, dataDir string, b *book, tl *tally) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := bbolt.Open(filepath.Join(dataDir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatalf("open the log: %v", err)
	}
	defer store.Close()
	var (
		registered  = map[string]int{}
		deployed    = map[string]int{}
		labels      = map[string]int{}
		keys        = map[string]int{}
		keyServers  = map[string][]string{}
		destroyReq  = map[string]int{}
		destroyedEv = map[string]bool{}
		created     = map[string]int{}
		paid        = map[string]int{}
		txs         = map[string]int{}
		credits     = map[string]int{}
		charges     = map[string]int{}
		backups     = map[string]int{}
		events      int
	)
	for from := (eventstore.Position{}); ; {
		batch, err := store.ReadAll(ctx, from, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		if len(batch) == 0 {
			break
		}
		for _, ev := range batch {
			events++
			e, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				t.Errorf("event %s (%s) at %s: %v", ev.ID, ev.Type, ev.Position, err)
				continue
			}
			switch e := e.(type) {
			case domain.AccountRegistered:
				registered[e.AccountID]++
			case domain.ServerDeployed:
				deployed[e.ServerID]++
				labels[e.Label]++
			case domain.IdempotencyKeyUsed:
				keys[e.Key]++
				keyServers[e.Key] = e.ServerIDs
			case domain.ServerDestroyRequested:
				destroyReq[e.ServerID]++
			case domain.ServerDestroyed:
				destroyedEv[e.ServerID] = true
			case domain.TopupCreated: // top-ups of the first sandbox
				created[e.TopupID]++
			case domain.TopupRequested: // top-ups through an invoice
				created[e.TopupID]++
			case domain.TopupPaid:
				paid[e.TopupID]++
			case domain.LedgerPosted:
				txs[e.TxID]++
				switch e.Kind {
				case domain.TxTopup:
					credits[e.TopupID]++
				case domain.TxCharge:
					if e.From != nil {
						charges[e.ServerID+" "+e.From.UTC().Format(time.RFC3339)]++
					}
				}
			case domain.BackupRequested:
				backups[e.BackupID]++
			}
		}
		from = batch[len(batch)-1].Position
	}
	tl.events = events

	lost := func(format string, args ...any) {
		tl.lost++
		t.Errorf("lost: "+format, args...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, a := range b.accounts {
		if registered[id] == 0 {
			lost("account %s (%s) was registered (201) but is not in the log", id, a.email)
		}
	}
	for key, ids := range b.acked {
		if keys[key] == 0 {
			lost("deploy with Idempotency-Key %s was accepted (202) but the key is not in the log", key)
		} else if !slices.Equal(keyServers[key], ids) {
			lost("deploy with Idempotency-Key %s answered servers %v, the log says %v", key, ids, keyServers[key])
		}
	}
	for id := range b.servers {
		if deployed[id] == 0 {
			lost("server %s was accepted (202) but is not in the log", id)
		}
	}
	for id := range b.destroyed {
		if destroyReq[id] == 0 && !destroyedEv[id] {
			lost("server %s was destroyed (202) but the log does not say so", id)
		}
	}
	for id := range b.topups {
		if created[id] == 0 {
			lost("top-up %s was created (201) but is not in the log", id)
		}
	}
	for id := range b.paid {
		if paid[id] == 0 || credits[id] == 0 {
			lost("top-up %s was paid (200) but the log has %d payments and %d credits", id, paid[id], credits[id])
		}
	}
	for id := range b.backups {
		if backups[id] == 0 {
			lost("backup %s was accepted (202) but is not in the log", id)
		}
	}
	doubled := func(what string, counts map[string]int) {
		for k, n := range counts {
			if n > 1 {
				tl.doubled++
				t.Errorf("doubled: %s %s is in the log %d times", what, k, n)
			}
		}
	}
	doubled("account registration", registered)
	doubled("server deploy", deployed)
	doubled("deploy with the label", labels) // each key has a label of its own
	doubled("Idempotency-Key", keys)
	doubled("destroy of server", destroyReq)
	doubled("top-up", created)
	doubled("payment of top-up", paid)
	doubled("ledger transaction", txs)
	doubled("credit of top-up", credits)
	doubled("charge of server and hour", charges)
	doubled("backup", backups)
	b.logged = keyServers
}

// audit runs `cryptovps audit` on the stopped process's data dir.
func audit(t testing.TB, p *binary.Process, tl *tally) {
	t.Helper()
	out, err := p.CLI(t, "audit", "--data-dir", p.DataDir, "--progress", "0")
	if err != nil {
		t.Errorf("cryptovps audit: %v\n%s", err, out)
		return
	}
	tl.audits++
	if !strings.Contains(out, "events") {
		t.Logf("audit: %s", out)
	}
}

func zero() domain.Money { return domain.Zero() }

func add(t testing.TB, m domain.Money, s string) domain.Money {
	t.Helper()
	x, err := domain.ParseMoney(s)
	if err != nil {
		// Ledger amounts are signed; ParseMoney may take only unsigned ones.
		if rest, neg := strings.CutPrefix(s, "-"); neg {
			if x, err = domain.ParseMoney(rest); err == nil {
				return m.Sub(x)
			}
		}
		t.Errorf("amount %q: %v", s, err)
		return m
	}
	return m.Add(x)
}

func cmp(t testing.TB, m domain.Money, s string) int {
	t.Helper()
	return m.Cmp(add(t, zero(), s))
}

func (tl tally) String() string {
	return fmt.Sprintf("%d rounds, %d events in the log, %d audits passed, %d lost, %d doubled",
		tl.rounds, tl.events, tl.audits, tl.lost, tl.doubled)
}
