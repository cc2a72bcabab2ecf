package domain

import "testing"

// The audit checks the hash of every transaction of the log: one the size
// of a charge's, with ids of uuids.
func BenchmarkLedgerHashOK(b *testing.B) {
	tx := goldenTx()
	tx.TxID = "charge:3f1c0b1e-0000-4000-8000-000000000001:3f1c0b1e-0000-4000-8000-000000000001"
	tx.Postings[0].Account = "customer:3f1c0b1e-0000-4000-8000-000000000001"
	tx = tx.sealed("47a30a5917181c95ec3558274fcf31d5683cb9b140effcbabd72618fe821ea67")
	b.ReportAllocs()
	for b.Loop() {
		if !tx.HashOK() {
			b.Fatal("hash")
		}
	}
}
