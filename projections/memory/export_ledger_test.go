package memory

// diffLedger compares the ledger rows (snapshot_ledger.go).
func diffLedger(a, b *Model) string {
	if d := diffMaps("ledger of", a.ledger, b.ledger); d != "" {
		return d
	}
	return diffMaps("odd ledger entry", a.odd, b.odd)
}
