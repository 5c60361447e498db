package channelstore

import (
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/batch"
)

func sampleRecord(t testing.TB) *Record {
	t.Helper()
	cfg := batch.ChannelConfig{
		// Test accounts 2 and 1 of the public test mnemonic and the dev token.
		Payer:              common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
		PayerAuthorizer:    common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
		Receiver:           common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
		ReceiverAuthorizer: common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
		Token:              common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		WithdrawDelay:      900,
	}
	return &Record{
		ChannelID: cfg.ChannelID(batch.SettlementDomain(big.NewInt(1337)).Separator()), Network: "eip155:1337",
		Config: cfg, Origins: []string{"http://127.0.0.1:8402"},
		Deposited: big.NewInt(10_000), Balance: big.NewInt(10_000), TotalClaimed: big.NewInt(0),
		Charged: big.NewInt(3000), SignedMax: big.NewInt(3000), Refunded: new(big.Int),
		LastDepositTx: common.HexToHash("0x01"), UpdatedAt: time.Unix(1_700_000_000, 0).UTC(),
	}
}

func TestDirRoundTripAndFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "channels")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := s.List(); err != nil || len(rs) != 0 {
		t.Fatalf("a store that was never written lists %v %v", rs, err)
	}
	r := sampleRecord(t)
	if _, err := s.Load(r.ChannelID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load before save: %v", err)
	}
	if err := s.Save(r); err != nil {
		t.Fatal(err)
	}
	r.Charged = big.NewInt(4000) // the store keeps what was saved, not the caller's later edits
	got, err := s.Load(r.ChannelID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Charged.Int64() != 3000 || got.Remaining().Int64() != 7000 || got.Config != r.Config || got.LastDepositTx != r.LastDepositTx ||
		!got.UpdatedAt.Equal(r.UpdatedAt) || !got.HasOrigin("http://127.0.0.1:8402/v1/quote") || got.HasOrigin("http://127.0.0.1:9/") {
		t.Fatalf("round trip: %+v", got)
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v %v", info.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != strings.ToLower(r.ChannelID.Hex())+".json" {
		t.Fatalf("files %v: want exactly one record and no temporary file", entries)
	}
	info, _ = os.Stat(filepath.Join(dir, entries[0].Name()))
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("record mode %v", info.Mode())
	}
	if err := s.Save(r); err != nil { // overwrite in place
		t.Fatal(err)
	}
	rs, err := s.List()
	if err != nil || len(rs) != 1 || rs[0].Charged.Int64() != 4000 {
		t.Fatalf("list after overwrite: %v %v", rs, err)
	}
	if err := s.Delete(r.ChannelID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(r.ChannelID); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := s.Load(r.ChannelID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load after delete: %v", err)
	}
}

func TestDirReportsDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	good := sampleRecord(t)
	if err := s.Save(good); err != nil {
		t.Fatal(err)
	}
	// A record stored under another channel's name, and a truncated one.
	other := common.HexToHash("0x1234")
	data, _ := os.ReadFile(s.file(good.ChannelID))
	os.WriteFile(s.file(other), data, 0o600)
	bad := common.HexToHash("0x5678")
	os.WriteFile(s.file(bad), data[:len(data)/2], 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600)

	if _, err := s.Load(other); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("a record under the wrong name must not load: %v", err)
	}
	rs, err := s.List()
	if len(rs) != 1 || rs[0].ChannelID != good.ChannelID || err == nil {
		t.Fatalf("list: %d records, err %v; want the good one and an error for the two others", len(rs), err)
	}
}

func TestRecordRejectsInconsistentData(t *testing.T) {
	r := sampleRecord(t)
	r.Config.WithdrawDelay = 1800 // the id no longer matches the config
	if err := NewMemory().Save(r); err == nil {
		t.Fatal("a record whose id does not match its config was saved")
	}
	good, _ := json.Marshal(sampleRecord(t))
	for name, edit := range map[string]func(string) string{
		"unknown key":     func(s string) string { return strings.Replace(s, `{`, `{"extra":1,`, 1) },
		"negative amount": func(s string) string { return strings.Replace(s, `"balance":"10000"`, `"balance":"-1"`, 1) },
		"leading zero":    func(s string) string { return strings.Replace(s, `"balance":"10000"`, `"balance":"010000"`, 1) },
		"bad network":     func(s string) string { return strings.Replace(s, `eip155:1337`, `eip155:1`, 1) },
		"trailing data":   func(s string) string { return s + "{}" },
		"withdrawal time without an amount": func(s string) string {
			return strings.Replace(s, `{`, `{"withdrawRequestedAt":1700000000,`, 1)
		},
		"negative withdrawal": func(s string) string {
			return strings.Replace(s, `{`, `{"pendingWithdrawal":"-5","withdrawRequestedAt":1700000000,`, 1)
		},
	} {
		var out Record
		if err := json.Unmarshal([]byte(edit(string(good))), &out); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRecordPendingWithdrawal: a pending withdrawal is not there to spend, survives a round trip,
// and records written before it existed still load.
func TestRecordPendingWithdrawal(t *testing.T) {
	r := sampleRecord(t)
	old, _ := json.Marshal(r)
	if strings.Contains(string(old), "pendingWithdrawal") || strings.Contains(string(old), "withdrawRequestedAt") {
		t.Fatalf("a record without a withdrawal writes withdrawal keys: %s", old)
	}
	r.SetWithdrawal(big.NewInt(5000), 1_700_000_000)
	if got := r.Remaining().Int64(); got != 2000 {
		t.Fatalf("remaining %d; want 10000 − 3000 charged − 5000 pending", got)
	}
	r.SetWithdrawal(big.NewInt(9000), 1_700_000_000)
	if r.Remaining().Sign() != 0 {
		t.Fatalf("remaining %s; want zero, never below", r.Remaining())
	}
	r.SetWithdrawal(big.NewInt(5000), 1_700_000_000)
	data, _ := json.Marshal(r)
	var got Record
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !got.WithdrawalPending() || got.PendingWithdrawal.Int64() != 5000 || got.WithdrawRequestedAt != 1_700_000_000 || got.Remaining().Int64() != 2000 {
		t.Fatalf("round trip: pending %s at %d\n%s", got.PendingWithdrawal, got.WithdrawRequestedAt, data)
	}
	c := got.Clone()
	got.PendingWithdrawal.SetInt64(1)
	if c.PendingWithdrawal.Int64() != 5000 {
		t.Fatal("Clone shares the pending withdrawal")
	}
	var before Record
	if err := json.Unmarshal(old, &before); err != nil || before.WithdrawalPending() || before.Remaining().Int64() != 7000 {
		t.Fatalf("an older record: %v, pending %s", err, before.PendingWithdrawal)
	}
	got.SetWithdrawal(nil, 1_700_000_000)
	if got.WithdrawalPending() || got.WithdrawRequestedAt != 0 {
		t.Fatalf("cleared withdrawal: %s at %d", got.PendingWithdrawal, got.WithdrawRequestedAt)
	}
}

func TestMemoryCopies(t *testing.T) {
	m := NewMemory()
	r := sampleRecord(t)
	if err := m.Save(r); err != nil {
		t.Fatal(err)
	}
	r.Balance.SetInt64(1)
	got, _ := m.Load(r.ChannelID)
	got.Charged.SetInt64(9)
	again, _ := m.Load(r.ChannelID)
	if again.Balance.Int64() != 10_000 || again.Charged.Int64() != 3000 {
		t.Fatalf("memory store shares amounts with callers: %+v", again)
	}
	rs, _ := m.List()
	if len(rs) != 1 {
		t.Fatalf("list %v", rs)
	}
}

func FuzzRecordUnmarshal(f *testing.F) {
	good, _ := json.Marshal(sampleRecord(f))
	f.Add(good)
	pending := sampleRecord(f)
	pending.SetWithdrawal(big.NewInt(5000), 1_700_000_000)
	withdrawing, _ := json.Marshal(pending)
	f.Add(withdrawing)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"channelId":"0x00","balance":"1e3"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		// Whatever parses is consistent and survives a round trip unchanged.
		if err := r.Check(); err != nil {
			t.Fatalf("parsed an inconsistent record: %v", err)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var again Record
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
		if again.Remaining().Cmp(r.Remaining()) != 0 || again.ChannelID != r.ChannelID || again.WithdrawalPending() != r.WithdrawalPending() {
			t.Fatalf("round trip changed the record")
		}
	})
}
