package memory

// diffLedger compares the ledgers' sparse indexes (snapshot_ledger.go).
func diffLedger(a, b *Model) string {
	return diffMaps("ledger index of", a.ledgers, b.ledgers)
}
