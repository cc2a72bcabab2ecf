package main

// The files serve keeps: the data dir is 0700 and every file in it that
// holds a secret or customer data is 0600. Files are created so; an
// existing one that other users can read is refused at start, with the
// command that fixes it, rather than served from.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// ensureDataDir creates the data dir 0700, or checks an existing one: a
// dir other users can write to lets them swap a secret for one they know
// (refused); one they can only list shows file names, not contents (a
// warning).
func ensureDataDir(dir string, log *slog.Logger) error {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	mode := info.Mode().Perm()
	if mode&0o022 != 0 {
		return fmt.Errorf("data dir %s can be written by other users (mode %#o), who could replace its secrets: "+
			"run `chmod 700 %s` and start again", dir, mode, dir)
	}
	if mode&0o055 != 0 {
		log.Warn("the data dir can be listed by other users: its files are private, but `chmod 700` it",
			"data_dir", dir, "mode", fmt.Sprintf("%#o", mode))
	}
	return nil
}

// checkPrivate refuses an existing file that users other than its owner
// may read or write: it holds a secret (the JWT secret, the operator
// token, the secrets key) or every customer's data (the event log, the
// sandbox cloud). A missing file is fine: it is created 0600.
func checkPrivate(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("%s is open to other users (mode %#o) and holds secrets: run `chmod 600 %s` "+
			"(and rotate what it holds if others may have read it), then start again", path, mode, path)
	}
	return nil
}
