package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Feed is the log as the account event stream reads it.
type Feed interface {
	Head(ctx context.Context) (eventstore.Position, error)
	Subscribe(ctx context.Context, from eventstore.Position, fn func([]eventstore.Event) error) error
}

// keepAlive is how often an idle stream sends a comment, so proxies and
// clients know it is alive.
const keepAlive = 25 * time.Second

// events is GET /events: every change to the caller's objects, as it is
// recorded, as Server-Sent Events. Each message's id is the log position of
// the change, so a client that reconnects with Last-Event-ID misses nothing
// and sees nothing twice; the object sent is the one its GET answers, read
// once the read model shows the change.
func (s *Server) events(c echo.Context) error {
	if s.feed == nil {
		return apiError(http.StatusNotFound, "not_found", "not found")
	}
	ctx := c.Request().Context()
	acct := accountOf(c)
	var from eventstore.Position
	if last := c.Request().Header.Get("Last-Event-ID"); last != "" {
		p, err := eventstore.ParsePosition(last)
		if err != nil {
			return validation(map[string]string{"Last-Event-ID": "an id this stream sent"})
		}
		from = p
	} else {
		head, err := s.feed.Head(ctx)
		if err != nil {
			return err
		}
		from = head
	}
	// The account's backups so far: their later events are on streams of
	// their own, which do not name the account.
	backups := map[string]bool{}
	list, err := s.read.Backups(ctx, acct, time.Time{})
	if err != nil {
		return err
	}
	for _, b := range list {
		backups[b.ID] = true
	}

	w := c.Response()
	// A stream outlives the server's write timeout (sized for a long-poll):
	// it is kept alive by its own comments instead.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		s.log.Warn("event stream: cannot lift the write deadline", "err", err)
	}
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	send := func(text string) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprint(w, text); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	if err := send("retry: 5000\n: connected\n\n"); err != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(keepAlive)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if send(": keep-alive\n\n") != nil {
					cancel()
					return
				}
			}
		}
	}()
	err = s.feed.Subscribe(ctx, from, func(batch []eventstore.Event) error {
		var mine []change
		for _, ev := range batch {
			if ch, ok := s.changeOf(acct, ev, backups); ok {
				mine = append(mine, ch)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		if err := s.app.WaitFor(ctx, mine[len(mine)-1].at); err != nil {
			return err
		}
		for _, ch := range mine {
			if ch.kind == "forgotten" {
				return errForgotten // its tokens no longer work: neither does its stream
			}
			data, err := s.render(ctx, acct, ch)
			if err != nil {
				return err
			}
			if err := send(fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", ch.at, ch.kind, data)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, errForgotten) {
		s.log.Warn("event stream ended", "account", acct, "err", err)
	}
	// The headers are sent: whatever ended the stream, the client
	// reconnects with Last-Event-ID.
	return nil
}

// errForgotten ends the stream of an account that was just forgotten.
var errForgotten = errors.New("account forgotten")

// change is one recorded change to one of the account's objects.
type change struct {
	at   eventstore.Position
	kind string // server, backup, topup, billing, limit-request, account
	id   string
}

// changeOf says which of the account's objects a log event changes.
func (s *Server) changeOf(acct string, ev eventstore.Event, backups map[string]bool) (change, bool) {
	prefix, id := domain.StreamID(ev.Stream)
	switch {
	case prefix == domain.AccountStreamPrefix && id == acct:
	case prefix == domain.BackupStreamPrefix && (backups[id] || ev.Type == "BackupRequested"):
	default:
		return change{}, false
	}
	e, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		s.log.Error("event stream: undecodable event", "event", ev.ID, "err", err)
		return change{}, false
	}
	at := ev.Position
	switch e := e.(type) {
	case domain.BackupRequested:
		if e.AccountID != acct {
			return change{}, false
		}
		backups[id] = true
		return change{at, "backup", id}, true
	case domain.BackupCompleted, domain.BackupFailed, domain.BackupRestored, domain.BackupDeleted, domain.BackupExpired:
		return change{at, "backup", id}, true
	case domain.ServerEvent:
		return change{at, "server", e.ServerOf()}, true
	case domain.LedgerPosted:
		return change{at, "billing", ""}, true
	case domain.TopupCreated:
		return change{at, "topup", e.TopupID}, true
	case domain.TopupPaid:
		return change{at, "topup", e.TopupID}, true
	case domain.LimitRequested:
		return change{at, "limit-request", e.RequestID}, true
	case domain.LimitRequestDecided:
		return change{at, "limit-request", e.RequestID}, true
	case domain.AccountRegistered, domain.AccountSuspended, domain.AccountUnsuspended, domain.ServerLimitSet:
		return change{at, "account", acct}, true
	case domain.AccountForgotten:
		return change{at, "forgotten", acct}, true
	}
	return change{}, false
}

// render is the changed object as its GET shows it.
func (s *Server) render(ctx context.Context, acct string, ch change) ([]byte, error) {
	var v any
	switch ch.kind {
	case "server":
		sv, err := s.read.Server(ctx, acct, ch.id)
		if err != nil {
			return nil, err
		}
		v = map[string]any{"server": serverOf(sv)}
	case "backup":
		b, err := s.read.Backup(ctx, acct, ch.id, s.app.Now(acct))
		if err != nil {
			// Gone from view (EXPIRED a week ago): say so by id.
			v = map[string]any{"backup": map[string]string{"id": ch.id, "status": "EXPIRED"}}
			break
		}
		v = map[string]any{"backup": backupOf(b)}
	case "topup":
		t, err := s.read.Topup(ctx, acct, ch.id)
		if err != nil {
			return nil, err
		}
		v = map[string]any{"topup": topupOf(t)}
	case "billing":
		b, err := s.read.Billing(ctx, acct)
		if err != nil {
			return nil, err
		}
		v = map[string]any{"billing": billingOf(b)}
	case "limit-request":
		list, err := s.read.LimitRequests(ctx, acct)
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			if r.ID == ch.id {
				v = map[string]any{"limitRequest": limitRequestOf(r)}
			}
		}
	case "account":
		a, err := s.read.Account(ctx, acct)
		if err != nil {
			return nil, err
		}
		u, err := s.user(ctx, a)
		if err != nil {
			return nil, err
		}
		v = map[string]any{"account": u}
	}
	return json.Marshal(v)
}
