package channelstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// Memory keeps records in memory. It is safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	records map[common.Hash]*Record
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{records: map[common.Hash]*Record{}} }

// Load returns a copy of the record of channel id, or ErrNotFound.
func (m *Memory) Load(id common.Hash) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// Save stores a copy of r.
func (m *Memory) Save(r *Record) error {
	if err := r.Check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[r.ChannelID] = r.Clone()
	return nil
}

// Delete removes the record of channel id; deleting a missing record is not an error.
func (m *Memory) Delete(id common.Hash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, id)
	return nil
}

// List returns copies of every record, most recently updated first.
func (m *Memory) List() ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Record, 0, len(m.records))
	for _, r := range m.records {
		out = append(out, r.Clone())
	}
	sortRecords(out)
	return out, nil
}

// Dir keeps one JSON file per channel, named after the channel id, in a directory. The directory
// is created (mode 0700) on the first Save; files are written to a temporary name, synced and
// renamed into place, so a reader sees the old record or the new one, never a torn write. One
// process should pay through a channel at a time.
type Dir struct {
	path string
}

// Open returns the store in dir. Nothing is created until a record is saved.
func Open(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("channelstore: empty directory name")
	}
	return &Dir{path: dir}, nil
}

// Path is the store's directory.
func (d *Dir) Path() string { return d.path }

func (d *Dir) file(id common.Hash) string {
	return filepath.Join(d.path, strings.ToLower(id.Hex())+".json")
}

// Load reads the record of channel id, or returns ErrNotFound.
func (d *Dir) Load(id common.Hash) (*Record, error) {
	data, err := os.ReadFile(d.file(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("channelstore: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", d.file(id), err)
	}
	if r.ChannelID != id {
		return nil, fmt.Errorf("channelstore: %s holds channel %s", d.file(id), r.ChannelID.Hex())
	}
	return &r, nil
}

// Save writes r atomically with mode 0600.
func (d *Dir) Save(r *Record) error {
	if err := r.Check(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("channelstore: %w", err)
	}
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return fmt.Errorf("channelstore: %w", err)
	}
	tmp, err := os.CreateTemp(d.path, ".channel-*.tmp") // created with mode 0600
	if err != nil {
		return fmt.Errorf("channelstore: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), d.file(r.ChannelID))
	}
	if err != nil {
		return fmt.Errorf("channelstore: save %s: %w", r.ChannelID.Hex(), err)
	}
	syncDir(d.path)
	return nil
}

// syncDir makes a rename durable where the platform allows it; failing is harmless.
func syncDir(path string) {
	if f, err := os.Open(path); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// Delete removes the record of channel id; deleting a missing record is not an error.
func (d *Dir) Delete(id common.Hash) error {
	err := os.Remove(d.file(id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("channelstore: %w", err)
	}
	return nil
}

// List reads every record, most recently updated first. Files that cannot be read are reported
// in the error, joined, next to the records that could; a missing directory holds no records.
func (d *Dir) List() ([]*Record, error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("channelstore: %w", err)
	}
	var out []*Record
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		id := strings.TrimSuffix(name, ".json")
		if len(id) != 66 || !strings.HasPrefix(id, "0x") {
			continue
		}
		r, err := d.Load(common.HexToHash(id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	sortRecords(out)
	return out, errors.Join(errs...)
}

func sortRecords(rs []*Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].UpdatedAt.Equal(rs[j].UpdatedAt) {
			return rs[i].UpdatedAt.After(rs[j].UpdatedAt)
		}
		return strings.Compare(rs[i].ChannelID.Hex(), rs[j].ChannelID.Hex()) < 0
	})
}
