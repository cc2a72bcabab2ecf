package api

import "testing"

// An IPv6 client is limited per /64 (what one subscriber usually holds),
// an IPv4 one per address; an IPv4-mapped IPv6 address is its IPv4 one.
func TestClientKey(t *testing.T) {
	for ip, want := range map[string]string{
		"203.0.113.7":                   "ip:203.0.113.7",
		"::ffff:203.0.113.7":            "ip:203.0.113.7",
		"2001:db8:1:2::1":               "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ffff:1": "ip:2001:db8:1:2::/64",
		"2001:db8:1:3::1":               "ip:2001:db8:1:3::/64",
		"fe80::1%eth0":                  "ip:fe80::/64",
		"::1":                           "ip:::/64",
		"not an ip":                     "ip:not an ip",
	} {
		if got := clientKey(ip); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}
