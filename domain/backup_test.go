package domain_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

const day = 24 * time.Hour

// givenBackup is the state of a backup stream after events.
func givenBackup(events ...domain.Event) domain.Backup {
	var b domain.Backup
	for _, e := range events {
		b = domain.EvolveBackup(b, e)
	}
	return b
}

// activeServer is server a of an account, deployed, provisioned and running.
func activeServer(t *testing.T) domain.Server {
	t.Helper()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	s.then(domain.StartProvision{ServerID: "a"}, t0)
	s.then(domain.RecordInstance{ServerID: "a", InstanceID: "i-77"}, t0)
	s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, t0)
	return s.server("a")
}

var backupRequested = domain.BackupRequested{
	BackupID: "b1", AccountID: accountID, ServerID: "a", InstanceID: "i-77",
	Label: "web-a", Plan: micro, Region: "ams", At: t0, ExpiresAt: t0.Add(7 * day),
}

// whenBackup decides cmd on the backup after history, checking that Decide
// answers either events or an error.
func whenBackup(t *testing.T, history []domain.Event, cmd domain.BackupCommand, now time.Time) ([]domain.Event, error) {
	t.Helper()
	events, err := domain.DecideBackup(givenBackup(history...), cmd, now)
	if err != nil && len(events) != 0 {
		t.Fatalf("DecideBackup(%T) returned events %v with error %v", cmd, types(events), err)
	}
	return events, err
}

func TestRequestBackupOfAnActiveServerExpiresSevenDaysLater(t *testing.T) {
	t.Parallel()
	srv := activeServer(t)
	now := at(3 * hour)
	events, err := whenBackup(t, nil, domain.RequestBackup{BackupID: "b1", AccountID: accountID, Server: srv}, now)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes(t, events, "BackupRequested")
	req := as[domain.BackupRequested](t, events[0])
	want := backupRequested
	want.At, want.ExpiresAt = now, now.Add(domain.BackupRetention)
	if fmt.Sprintf("%+v", req) != fmt.Sprintf("%+v", want) {
		t.Fatalf("event\n got %+v\nwant %+v", req, want)
	}
	wantEqual(t, "retention", domain.BackupRetention, 7*day)

	b := givenBackup(events...)
	wantEqual(t, "exists", b.Exists(), true)
	wantEqual(t, "status", b.Status, domain.BackupPending)
	wantTime(t, "created", b.CreatedAt, now)
	wantTime(t, "expires", b.ExpiresAt, now.Add(7*day))
	wantEqual(t, "visible", b.Visible(now), true)
}

func TestRequestBackupOfAServerThatIsNotActiveIsAStateError(t *testing.T) {
	t.Parallel()
	for _, status := range []domain.ServerStatus{
		domain.StatusProvisioning, domain.StatusSuspended, domain.StatusDestroying, domain.StatusDestroyed, domain.StatusError,
	} {
		srv := domain.Server{ID: "a", Status: status, InstanceID: "i-77"}
		_, err := whenBackup(t, nil, domain.RequestBackup{BackupID: "b1", AccountID: accountID, Server: srv}, t0)
		wantStateError(t, err)
	}
}

func TestRequestBackupWithAnIDAlreadyUsedIsInvalid(t *testing.T) {
	t.Parallel()
	_, err := whenBackup(t, []domain.Event{backupRequested}, domain.RequestBackup{BackupID: "b1", AccountID: accountID, Server: activeServer(t)}, at(time.Hour))
	wantErr(t, err, domain.ErrInvalid)
}

// Backup histories by status.
var (
	pendingBackup   = []domain.Event{backupRequested}
	availableBackup = []domain.Event{backupRequested, domain.BackupCompleted{SnapshotID: "snap-1", At: at(10 * time.Minute)}}
	failedBackup    = []domain.Event{backupRequested, domain.BackupFailed{Reason: "disk busy", At: at(10 * time.Minute)}}
	deletedBackup   = slices.Concat(availableBackup, []domain.Event{domain.BackupDeleted{At: at(day)}})
	expiredBackup   = slices.Concat(availableBackup, []domain.Event{domain.BackupExpired{At: t0.Add(7 * day)}})
)

func TestCompleteAndFailBackupOnlyFromPending(t *testing.T) {
	t.Parallel()
	now := at(20 * time.Minute)
	events, err := whenBackup(t, pendingBackup, domain.CompleteBackup{SnapshotID: "snap-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes(t, events, "BackupCompleted")
	done := as[domain.BackupCompleted](t, events[0])
	wantEqual(t, "snapshot", done.SnapshotID, "snap-1")
	wantTime(t, "at", done.At, now)
	b := givenBackup(slices.Concat(pendingBackup, events)...)
	wantEqual(t, "status", b.Status, domain.BackupAvailable)
	wantEqual(t, "snapshot", b.SnapshotID, "snap-1")

	events, err = whenBackup(t, pendingBackup, domain.FailBackup{Reason: "disk busy"}, now)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes(t, events, "BackupFailed")
	wantEqual(t, "reason", as[domain.BackupFailed](t, events[0]).Reason, "disk busy")
	wantEqual(t, "status", givenBackup(slices.Concat(pendingBackup, events)...).Status, domain.BackupError)

	for name, history := range map[string][]domain.Event{
		"AVAILABLE": availableBackup, "ERROR": failedBackup, "DELETED": deletedBackup, "EXPIRED": expiredBackup,
	} {
		for _, cmd := range []domain.BackupCommand{domain.CompleteBackup{SnapshotID: "snap-2"}, domain.FailBackup{Reason: "x"}} {
			_, err := whenBackup(t, history, cmd, at(2*day))
			if !errors.Is(err, domain.ErrInvalidState) {
				t.Errorf("%T on a %s backup: error %v, want a *StateError", cmd, name, err)
			}
		}
	}
}

func TestCheckRestoreAllowsOnlyTheOwnersAvailableUnexpiredBackup(t *testing.T) {
	t.Parallel()
	expires := t0.Add(7 * day)
	for _, tc := range []struct {
		name    string
		history []domain.Event
		account string
		now     time.Time
		want    string // "ok", "not found" or "state"
	}{
		{"available, owner, before expiry", availableBackup, accountID, expires.Add(-time.Nanosecond), "ok"},
		{"another account's backup", availableBackup, "acct-2", at(day), "not found"},
		// EXPIRED (shown for a week after it stopped being restorable):
		// a 409 that says so, then not found.
		{"at expiry", availableBackup, accountID, expires, "state"},
		{"past expiry", availableBackup, accountID, expires.Add(day), "state"},
		{"a week past expiry", availableBackup, accountID, expires.Add(domain.ExpiredShown), "not found"},
		{"pending", pendingBackup, accountID, at(day), "state"},
		{"failed", failedBackup, accountID, at(day), "state"},
		{"deleted", deletedBackup, accountID, at(2 * day), "state"},
		{"expired", expiredBackup, accountID, at(2 * day), "state"},
		{"expired a week ago", expiredBackup, accountID, expires.Add(domain.ExpiredShown), "not found"},
		{"never requested", nil, accountID, at(day), "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := whenBackup(t, tc.history, domain.CheckRestore{AccountID: tc.account}, tc.now)
			switch tc.want {
			case "ok":
				if err != nil {
					t.Fatalf("CheckRestore: %v", err)
				}
				wantNoEvents(t, events)
			case "not found":
				wantErr(t, err, domain.ErrNotFound)
			case "state":
				wantStateError(t, err)
			}
		})
	}
}

func TestRecordRestoreRemembersEachServerRestoredFromTheBackup(t *testing.T) {
	t.Parallel()
	history := append([]domain.Event(nil), availableBackup...)
	for _, id := range []string{"r1", "r2"} {
		events, err := whenBackup(t, history, domain.RecordRestore{ServerID: id}, at(day))
		if err != nil {
			t.Fatal(err)
		}
		wantTypes(t, events, "BackupRestored")
		wantEqual(t, "server", as[domain.BackupRestored](t, events[0]).ServerID, id)
		history = append(history, events...)
	}
	wantEqual(t, "restores", fmt.Sprint(givenBackup(history...).Restores), "[r1 r2]")
}

func TestDeleteBackupExpiresItAndItIsGoneAWeekLater(t *testing.T) {
	t.Parallel()
	_, err := whenBackup(t, availableBackup, domain.DeleteBackup{AccountID: "acct-2"}, at(day))
	wantErr(t, err, domain.ErrNotFound)

	events, err := whenBackup(t, availableBackup, domain.DeleteBackup{AccountID: accountID}, at(day))
	if err != nil {
		t.Fatal(err)
	}
	wantTypes(t, events, "BackupDeleted")
	wantTime(t, "at", as[domain.BackupDeleted](t, events[0]).At, at(day))
	history := slices.Concat(availableBackup, events)
	b := givenBackup(history...)
	wantEqual(t, "status", b.Status, domain.BackupDeletedS)
	wantEqual(t, "visible", b.Visible(at(day)), false)
	wantTime(t, "no longer restorable from", b.ExpiresAt, at(day))
	status, shown := domain.Shown(b.Status, b.ExpiresAt, at(day))
	wantEqual(t, "shown", fmt.Sprintln(status, shown), "EXPIRED true\n")

	// EXPIRED for a week: a second delete or a restore is a 409 saying so,
	// then the backup is gone.
	_, err = whenBackup(t, history, domain.DeleteBackup{AccountID: accountID}, at(day+time.Minute))
	wantStateError(t, err)
	_, err = whenBackup(t, history, domain.CheckRestore{AccountID: accountID}, at(day+time.Minute))
	wantStateError(t, err)
	_, err = whenBackup(t, history, domain.DeleteBackup{AccountID: accountID}, at(8*day-time.Nanosecond))
	wantStateError(t, err)
	_, err = whenBackup(t, history, domain.DeleteBackup{AccountID: accountID}, at(8*day))
	wantErr(t, err, domain.ErrNotFound)
	_, err = whenBackup(t, history, domain.CheckRestore{AccountID: accountID}, at(8*day))
	wantErr(t, err, domain.ErrNotFound)
	if _, shown := domain.Shown(b.Status, b.ExpiresAt, at(8*day)); shown {
		t.Error("a backup deleted a week ago is still shown")
	}

	// Pending and failed backups can be deleted too; expired ones are
	// EXPIRED already.
	for _, h := range [][]domain.Event{pendingBackup, failedBackup} {
		if _, err := whenBackup(t, h, domain.DeleteBackup{AccountID: accountID}, at(day)); err != nil {
			t.Errorf("delete: %v", err)
		}
	}
	_, err = whenBackup(t, availableBackup, domain.DeleteBackup{AccountID: accountID}, t0.Add(7*day))
	wantStateError(t, err)
	// Deleting after the retention would have ended keeps the retention's end.
	late := givenBackup(slices.Concat(availableBackup, []domain.Event{domain.BackupDeleted{At: t0.Add(8 * day)}})...)
	wantTime(t, "expires", late.ExpiresAt, t0.Add(7*day))
}

func TestExpireBackupRetiresItAtItsExpiryAndNotBefore(t *testing.T) {
	t.Parallel()
	expires := t0.Add(7 * day)
	_, err := whenBackup(t, availableBackup, domain.ExpireBackup{}, expires.Add(-time.Second))
	wantStateError(t, err)

	for _, now := range []time.Time{expires, expires.Add(3 * day)} {
		for _, history := range [][]domain.Event{pendingBackup, availableBackup, failedBackup} {
			events, err := whenBackup(t, history, domain.ExpireBackup{}, now)
			if err != nil {
				t.Fatalf("expire at +%s: %v", now.Sub(expires), err)
			}
			wantTypes(t, events, "BackupExpired")
			// The event says when it expired, not when the reaper noticed.
			wantTime(t, "at", as[domain.BackupExpired](t, events[0]).At, expires)
			b := givenBackup(slices.Concat(history, events)...)
			wantEqual(t, "status", b.Status, domain.BackupExpiredS)
		}
	}

	for _, history := range [][]domain.Event{deletedBackup, expiredBackup} {
		_, err := whenBackup(t, history, domain.ExpireBackup{}, expires.Add(day))
		wantStateError(t, err)
	}
}

func TestBackupCommandsOnAMissingBackupAreNotFound(t *testing.T) {
	t.Parallel()
	for _, cmd := range []domain.BackupCommand{
		domain.CompleteBackup{SnapshotID: "s"}, domain.FailBackup{Reason: "x"},
		domain.CheckRestore{AccountID: accountID}, domain.RecordRestore{ServerID: "r"},
		domain.DeleteBackup{AccountID: accountID}, domain.ExpireBackup{},
	} {
		_, err := whenBackup(t, nil, cmd, t0)
		wantErr(t, err, domain.ErrNotFound)
	}
}
