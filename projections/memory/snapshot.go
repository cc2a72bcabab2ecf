package memory

// Read-model snapshots: the model's state written to a file at a position of
// the log, so that a start folds only the log's tail after it. A snapshot is
// a head start and nothing more. It is loaded only when its format and
// shape are this build's, its checksum holds, and the log still has, at the
// snapshot's position, the event it was taken at (a log restored from an
// older copy, truncated, or another log altogether does not); anything else
// and the caller replays the whole log, as without one. The log is read
// after it and trusted over it; deleting the file loses only time.
//
// File layout (integers little-endian):
//
//	magic "CVPSRMS\n" | format u32 | shape [16]byte
//	position commit u64 | prepare u64 | stream (u32 length, bytes) | version u64 | event id [16]byte
//	sections: accounts, backups, backupsOf, folded, ledger
//	crc32c of all that precedes u32
//
// A section of many entries (accounts, backups) is cut into chunks, each
// its length in bytes then its entries, so that it is encoded and decoded
// on every core.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// snapshotFormat is the layout's version. Raise it when the file's layout
// changes, or when Evolve folds the same events into different states
// without a change of the types (which the shape would catch).
const snapshotFormat = 1

var snapshotMagic = [8]byte{'C', 'V', 'P', 'S', 'R', 'M', 'S', '\n'}

// snapshotShape names the shape of what a snapshot holds: the Go types of
// the state (down to the types that encode themselves) and the event types
// the domain folds. A build whose types differ does not read another's
// snapshots.
var snapshotShape = shapeKey()

func shapeKey() [16]byte {
	var b strings.Builder
	for _, t := range []reflect.Type{reflect.TypeFor[domain.Account](), reflect.TypeFor[domain.Backup](),
		reflect.TypeFor[foldedAt](), reflect.TypeFor[row](), reflect.TypeFor[projections.LedgerEntry]()} {
		b.WriteString(eventstore.Shape(t))
		b.WriteByte('\n')
	}
	types := domain.EventTypes()
	slices.Sort(types)
	b.WriteString(strings.Join(types, ","))
	sum := sha256.Sum256([]byte(b.String()))
	var out [16]byte
	copy(out[:], hex.EncodeToString(sum[:8]))
	return out
}

// ErrSnapshotMismatch is wrapped by LoadSnapshot's error when the snapshot
// is not one of this log (stale, from another log, or newer than the log).
var ErrSnapshotMismatch = errors.New("the snapshot does not match the log")

// copyState is the model's state taken under its read lock, to encode
// outside it.
type copyState struct {
	pos       eventstore.Position
	stream    string
	version   uint64
	accounts  map[string]*domain.Account
	backups   map[string]*domain.Backup
	backupsOf map[string][]string
	folded    map[string]foldedAt
	ledger    map[string][]row
	odd       map[eventstore.Position]projections.LedgerEntry
}

// take copies the state at the model's last folded event. ok is false for
// a model that folded nothing.
func (m *Model) take() (c copyState, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for stream, f := range m.folded {
		if c.stream == "" || c.pos.Less(f.pos) {
			c.pos, c.stream, c.version = f.pos, stream, f.version
		}
	}
	if c.stream == "" {
		return c, false
	}
	c.accounts = make(map[string]*domain.Account, len(m.accounts))
	for id, a := range m.accounts {
		cp := a.Clone()
		c.accounts[id] = &cp
	}
	c.backups = make(map[string]*domain.Backup, len(m.backups))
	for id, b := range m.backups {
		cp := *b
		cp.Restores = slices.Clone(b.Restores)
		c.backups[id] = &cp
	}
	c.backupsOf = make(map[string][]string, len(m.backupsOf))
	for id, l := range m.backupsOf {
		c.backupsOf[id] = slices.Clip(l) // appended to, never changed
	}
	c.folded = make(map[string]foldedAt, len(m.folded))
	for k, v := range m.folded {
		c.folded[k] = v
	}
	c.takeLedger(m)
	return c, true
}

// WriteSnapshot writes the model's state, at its last folded event, to
// path: to a temporary file beside it, synced, then renamed over it, so
// that a crash leaves the old snapshot or the new one, never part of one.
// store gives the id of the event at the snapshot's position, which a
// load checks the log against. A model that folded nothing writes none
// (ok false). The model is locked (for reading) only while its state is
// copied, not while it is encoded and written.
func (m *Model) WriteSnapshot(ctx context.Context, store eventstore.Store, path string) (pos eventstore.Position, ok bool, err error) {
	c, ok := m.take()
	if !ok {
		return pos, false, nil
	}
	at, err := store.ReadStreamLazy(ctx, c.stream, c.version)
	if err != nil {
		return pos, false, fmt.Errorf("read-model snapshot: read %s: %w", c.stream, err)
	}
	if len(at) == 0 || at[0].Version != c.version || at[0].Position != c.pos {
		return pos, false, fmt.Errorf("read-model snapshot: %s@%d is not in the log at %s", c.stream, c.version, c.pos)
	}
	if err := writeFile(path, func(out io.Writer) error { return c.encode(out, at[0].ID) }); err != nil {
		return pos, false, fmt.Errorf("read-model snapshot: %w", err)
	}
	return c.pos, true, nil
}

// writeFile writes what write writes to path atomically and durably: a
// temporary file in the same dir (mode 0600), synced, renamed over path,
// the dir synced.
func writeFile(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeLeftovers removes the temporary files a write cut short (a crash)
// left beside path.
func removeLeftovers(path string) {
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), filepath.Base(path)+".tmp-*"))
	for _, f := range left {
		_ = os.Remove(f)
	}
}

// LoadSnapshot fills an empty model from the snapshot at path, after
// checking it against store: the event at its position must be there, with
// the id it was taken at. It returns the snapshot's position; the caller
// then folds the log after it (Projector.CatchUp starts from Checkpoint).
// On any error the model is left empty, as it was: the caller replays the
// whole log. A missing file is an error wrapping os.ErrNotExist. The
// temporary files of a write a crash cut short are removed, never read.
func (m *Model) LoadSnapshot(ctx context.Context, store eventstore.Store, path string) (eventstore.Position, error) {
	removeLeftovers(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return eventstore.Position{}, err
	}
	h, body, err := parseHeader(data)
	if err != nil {
		return eventstore.Position{}, err
	}
	at, err := store.ReadStreamLazy(ctx, h.stream, h.version)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("read %s: %w", h.stream, err)
	}
	if len(at) == 0 {
		return eventstore.Position{}, fmt.Errorf("%w: the log has no event %s@%d (taken at %s: a log restored from an older copy, or another log)",
			ErrSnapshotMismatch, h.stream, h.version, h.pos)
	}
	if at[0].Version != h.version || at[0].Position != h.pos || at[0].ID != h.id {
		return eventstore.Position{}, fmt.Errorf("%w: the event %s@%d is %s at %s, the snapshot's was %s at %s",
			ErrSnapshotMismatch, h.stream, h.version, at[0].ID, at[0].Position, h.id, h.pos)
	}
	c, err := decodeBody(body)
	if err != nil {
		return eventstore.Position{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.checkpoint.IsZero() {
		return eventstore.Position{}, errors.New("read-model snapshot: the model is not empty")
	}
	m.checkpoint = h.pos
	m.accounts, m.backups, m.backupsOf, m.folded = c.accounts, c.backups, c.backupsOf, c.folded
	c.putLedger(m)
	return h.pos, nil
}

type header struct {
	pos     eventstore.Position
	stream  string
	version uint64
	id      uuid.UUID
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseHeader checks the file whole (magic, format, shape, checksum) and
// reads its header; body is what follows it, without the checksum.
func parseHeader(data []byte) (h header, body []byte, err error) {
	if len(data) < 8+4+16+4 {
		return h, nil, errors.New("read-model snapshot: truncated")
	}
	if !bytes.Equal(data[:8], snapshotMagic[:]) {
		return h, nil, errors.New("read-model snapshot: not a snapshot file")
	}
	if f := binary.LittleEndian.Uint32(data[8:]); f != snapshotFormat {
		return h, nil, fmt.Errorf("read-model snapshot: format %d, this build reads %d", f, snapshotFormat)
	}
	if !bytes.Equal(data[12:28], snapshotShape[:]) {
		return h, nil, fmt.Errorf("read-model snapshot: written for the state's shape %s, this build's is %s", data[12:28], snapshotShape[:])
	}
	end := len(data) - 4
	if crc32.Checksum(data[:end], castagnoli) != binary.LittleEndian.Uint32(data[end:]) {
		return h, nil, errors.New("read-model snapshot: checksum mismatch (truncated or damaged)")
	}
	r := reader{b: data[28:end]}
	h.pos.Commit, h.pos.Prepare = r.u64(), r.u64()
	h.stream = r.str()
	h.version = r.u64()
	copy(h.id[:], r.bytes(16))
	if r.err != nil {
		return h, nil, fmt.Errorf("read-model snapshot: header: %w", r.err)
	}
	return h, r.b, nil
}

// encode writes the copy out as the file.
func (c *copyState) encode(out io.Writer, id uuid.UUID) error {
	w := writer{out: out}
	w.b = append(w.b, snapshotMagic[:]...)
	w.u32(snapshotFormat)
	w.b = append(w.b, snapshotShape[:]...)
	w.u64(c.pos.Commit)
	w.u64(c.pos.Prepare)
	w.str(c.stream)
	w.u64(c.version)
	w.b = append(w.b, id[:]...)
	if err := chunks(&w, c.accounts); err != nil {
		return err
	}
	if err := chunks(&w, c.backups); err != nil {
		return err
	}
	w.u64(uint64(len(c.backupsOf)))
	for id, l := range c.backupsOf {
		w.str(id)
		w.u64(uint64(len(l)))
		for _, b := range l {
			w.str(b)
		}
		w.spill()
	}
	w.u64(uint64(len(c.folded)))
	for stream, f := range c.folded {
		w.str(stream)
		w.u64(f.version)
		w.u64(f.pos.Commit)
		w.u64(f.pos.Prepare)
		w.u64(f.tx)
		w.spill()
	}
	if err := c.encodeLedger(&w); err != nil {
		return err
	}
	w.flush()
	w.u32(w.crc)
	w.flush()
	return w.err
}

// decodeBody reads the sections after the header.
func decodeBody(body []byte) (c copyState, err error) {
	r := reader{b: body}
	if c.accounts, err = unchunk[domain.Account](&r); err != nil {
		return c, fmt.Errorf("read-model snapshot: accounts: %w", err)
	}
	if c.backups, err = unchunk[domain.Backup](&r); err != nil {
		return c, fmt.Errorf("read-model snapshot: backups: %w", err)
	}
	n := r.count(16)
	c.backupsOf = make(map[string][]string, n)
	for range n {
		id := r.str()
		l := make([]string, r.count(4))
		for i := range l {
			l[i] = r.str()
		}
		c.backupsOf[id] = l
	}
	n = r.count(40)
	c.folded = make(map[string]foldedAt, n)
	for range n {
		stream := r.str()
		f := foldedAt{version: r.u64()}
		f.pos.Commit, f.pos.Prepare = r.u64(), r.u64()
		f.tx = r.u64()
		c.folded[stream] = f
	}
	if r.err != nil {
		return c, fmt.Errorf("read-model snapshot: %w", r.err)
	}
	if err := c.decodeLedger(&r); err != nil {
		return c, fmt.Errorf("read-model snapshot: ledger: %w", err)
	}
	if len(r.b) != 0 || r.err != nil {
		return c, fmt.Errorf("read-model snapshot: %d bytes left over (%v)", len(r.b), r.err)
	}
	return c, nil
}

// chunks writes a map of states as chunks of JSON, encoded on every core:
// count of chunks, then each chunk's length in bytes, its count of
// entries, and the entries (key, JSON).
func chunks[S any](w *writer, states map[string]*S) error {
	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	parts := min(max(len(keys)/256, 1), 4*runtime.GOMAXPROCS(0))
	out := make([][]byte, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			var cw writer
			part := keys[p*len(keys)/parts : (p+1)*len(keys)/parts]
			cw.u64(uint64(len(part)))
			for _, k := range part {
				cw.str(k)
				data, err := json.Marshal(states[k])
				if err != nil {
					errs[p] = fmt.Errorf("%s: %w", k, err)
					return
				}
				cw.u32(uint32(len(data)))
				cw.b = append(cw.b, data...)
			}
			out[p] = cw.b
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.u64(uint64(parts))
	for _, b := range out {
		w.u64(uint64(len(b)))
		w.raw(b)
	}
	return nil
}

// unchunk reads what chunks wrote, decoding the chunks on every core.
func unchunk[S any](r *reader) (map[string]*S, error) {
	n := r.count(8)
	parts := make([][]byte, n)
	for i := range parts {
		parts[i] = r.bytes(int(r.count(1)))
	}
	if r.err != nil {
		return nil, r.err
	}
	maps := make([]map[string]*S, n)
	errs := make([]error, n)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, part := range parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pr := reader{b: part}
			k := pr.count(8)
			got := make(map[string]*S, k)
			for range k {
				key := pr.str()
				data := pr.bytes(int(pr.u32()))
				if pr.err != nil {
					break
				}
				s := new(S)
				if err := json.Unmarshal(data, s); err != nil {
					errs[i] = fmt.Errorf("%s: %w", key, err)
					return
				}
				got[key] = s
			}
			if pr.err == nil && len(pr.b) != 0 {
				pr.err = errors.New("chunk longer than its entries")
			}
			maps[i], errs[i] = got, pr.err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	total := 0
	for _, m := range maps {
		total += len(m)
	}
	all := make(map[string]*S, total)
	for _, m := range maps {
		for k, v := range m {
			all[k] = v
		}
	}
	return all, nil
}

// writer appends the file's integers and strings to b, and with out
// writes them there a megabyte at a time, keeping their checksum.
type writer struct {
	b   []byte
	out io.Writer
	crc uint32
	err error
}

// spill writes b out once it holds a megabyte.
func (w *writer) spill() {
	if w.out != nil && len(w.b) >= 1<<20 {
		w.flush()
	}
}

func (w *writer) flush() {
	w.crc = crc32.Update(w.crc, castagnoli, w.b)
	if w.err == nil {
		_, w.err = w.out.Write(w.b)
	}
	w.b = w.b[:0]
}

// raw writes p as it is.
func (w *writer) raw(p []byte) {
	w.flush()
	w.crc = crc32.Update(w.crc, castagnoli, p)
	if w.err == nil {
		_, w.err = w.out.Write(p)
	}
}

func (w *writer) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *writer) str(s string) {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
}

// reader reads what writer wrote; past the end, it reads zeros and keeps
// the error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str() string { return string(r.bytes(int(r.u32()))) }

// count reads a count of entries each at least min bytes long, refusing
// one the rest of the file cannot hold (so a damaged count allocates
// nothing absurd).
func (r *reader) count(min int) int {
	n := r.u64()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.err = errShort
		return 0
	}
	return int(n)
}
