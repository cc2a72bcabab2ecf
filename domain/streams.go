package domain

import "strings"

// Stream names: the aggregate kind, a dash, and its id.
const (
	AccountStreamPrefix = "account-"
	BackupStreamPrefix  = "backup-"
	ClockStream         = "sandbox-clock"
)

// AccountStream is the stream of an account.
func AccountStream(id string) string { return AccountStreamPrefix + id }

// BackupStream is the stream of a backup.
func BackupStream(id string) string { return BackupStreamPrefix + id }

// StreamID splits a stream name into its prefix and id.
func StreamID(stream string) (prefix, id string) {
	for _, p := range []string{AccountStreamPrefix, BackupStreamPrefix} {
		if strings.HasPrefix(stream, p) {
			return p, stream[len(p):]
		}
	}
	return stream, ""
}
