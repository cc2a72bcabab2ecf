package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/projections/postgres/pgleader"
)

// provisionLease is how long a provisioning attempt another process started
// is left alone before this one retries it, when other processes may share
// the event store.
const provisionLease = 2 * time.Minute

// openLeadership says how this process learns whether it does the
// background work, and for how long another worker's provisioning attempt
// is left alone:
//
//   - KurrentDB and PostgreSQL: several API processes may share them; the
//     one holding a PostgreSQL advisory lock works (pgleader).
//   - KurrentDB alone: the read models are in memory, so the process is
//     meant to run alone; it works, but attempts an earlier process left
//     are still given the lease, since that process might not be gone.
//   - the embedded store: its file lock admits one process, the only
//     worker; an attempt it finds unfinished was left by a dead process.
func openLeadership(ctx context.Context, cfg config, log *slog.Logger) (work.Leadership, time.Duration, func(), error) {
	switch {
	case cfg.EventStoreURL != "" && cfg.DatabaseURL != "":
		l, err := pgleader.Open(ctx, cfg.DatabaseURL, pgleader.Options{Log: log})
		if err != nil {
			return nil, 0, nil, err
		}
		log.Info("background work: elected through PostgreSQL; every API process on this event store and database takes part",
			"name", l.Name())
		// What the processes of one deployment must share besides the
		// event store and the database.
		if cfg.JWTSecret == "" || cfg.AdminToken == "" {
			log.Warn("give every API process the same --jwt-secret and --admin-token (CRYPTOVPS_JWT_SECRET, " +
				"CRYPTOVPS_ADMIN_TOKEN): the ones generated in this data dir are this process's alone")
		}
		if cfg.SandboxCloud == "" {
			log.Warn("sandbox: give every API process the same --sandbox-cloud file (CRYPTOVPS_SANDBOX_CLOUD): " +
				"the default, in this data dir, is a simulated cloud of this process's alone")
		}
		return l, provisionLease, func() { l.Close() }, nil
	case cfg.EventStoreURL != "":
		log.Warn("background work: no --database-url / DATABASE_URL, so no election: run only one API process on this event store")
		return work.SoleWorker{}, provisionLease, func() {}, nil
	}
	return work.SoleWorker{}, 0, func() {}, nil
}
