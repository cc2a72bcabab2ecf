package main

// The operator surface: where /admin and /metrics listen, what an operator
// token must be, and the public base URL the guides print.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/cryptovps/cryptovps/domain"
)

// defaultAdminAddr is the operator listener of a production deployment
// when --admin-addr is not given: this machine only.
const defaultAdminAddr = "127.0.0.1:8081"

// adminListen is where the operator API listens: --admin-addr, else in
// production (a real cloud or real payments) the loopback default. "" keeps
// it on the public listener, as the sandbox does by default: nothing there
// is real, and `make run` stays one port, which the operator tools find
// without being told.
func (c *config) adminListen(mode domain.Mode) (string, error) {
	addr := c.AdminAddr
	if addr == "" && !mode.Sandbox() {
		addr = defaultAdminAddr
	}
	if addr == "" {
		return "", nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--admin-addr %q: want host:port, e.g. %s: %w", addr, defaultAdminAddr, err)
	}
	if addr == c.Addr && port != "0" {
		return "", fmt.Errorf("--admin-addr %s is also --addr: the operator API needs a listener of its own", addr)
	}
	return addr, nil
}

// loopback reports whether a listen address admits only this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// minTokenBits is what an operator token must carry: 32 random bytes.
const minTokenBits = 256

// errWeakToken says what a good operator token is and how to make one.
func errWeakToken(flag, why string) error {
	return fmt.Errorf("%s is too weak (%s): it must be at least 32 random bytes, e.g. 64 hex digits; "+
		"generate one with `openssl rand -hex 32`", flag, why)
}

// checkOperatorToken refuses an operator token that does not look like 32
// random bytes or more. Entropy cannot be measured from one sample, so this
// is an estimate that catches what people actually type: too short for its
// alphabet (hex needs 64 characters, base64 43), or visibly patterned (few
// distinct characters, one character everywhere, a repeated block).
func checkOperatorToken(flag, tok string) error {
	if tok != strings.TrimSpace(tok) || strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return errWeakToken(flag, "it must be printable ASCII without spaces")
	}
	if bits := float64(len(tok)) * math.Log2(float64(alphabet(tok))); bits < minTokenBits {
		return errWeakToken(flag, fmt.Sprintf("%d characters of its alphabet carry at most %.0f bits", len(tok), bits))
	}
	counts := map[byte]int{}
	for i := range len(tok) {
		counts[tok[i]]++
	}
	if len(counts) < 12 {
		return errWeakToken(flag, fmt.Sprintf("only %d distinct characters", len(counts)))
	}
	for _, n := range counts {
		if n*4 > len(tok) {
			return errWeakToken(flag, "one character makes up over a quarter of it")
		}
	}
	for p := 1; p <= len(tok)/2; p++ {
		if strings.Repeat(tok[:p], len(tok)/p+1)[:len(tok)] == tok {
			return errWeakToken(flag, "it repeats a shorter block")
		}
	}
	return nil
}

// alphabet is the size of the smallest usual alphabet tok is written in:
// hex, base64 (standard or URL-safe, with padding), or printable ASCII.
func alphabet(tok string) int {
	isHex := func(r rune) bool {
		return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
	}
	isB64 := func(r rune) bool {
		return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("+/-_=", r)
	}
	lower, upper := strings.ToLower(tok) == tok, strings.ToUpper(tok) == tok
	switch {
	case !strings.ContainsFunc(tok, func(r rune) bool { return !isHex(r) }) && (lower || upper):
		return 16
	case !strings.ContainsFunc(tok, func(r rune) bool { return !isB64(r) }):
		return 64
	}
	return 94
}

// publicBaseURL is the base URL /llms.txt and /docs print: --base-url, which
// production requires (an https URL), or in the sandbox the listen address
// as seen from this machine. It is never taken from a request, whose Host
// header a client chooses.
func (c *config) publicBaseURL(mode domain.Mode) (string, error) {
	if c.BaseURL == "" {
		if !mode.Sandbox() {
			return "", errors.New("--base-url is required in production: the public https URL agents reach this API at " +
				"(printed in /llms.txt and /docs), e.g. --base-url https://api.example.com")
		}
		host, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return "", fmt.Errorf("--addr %q: %w", c.Addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "localhost"
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("--base-url %q: want an absolute http(s) URL without credentials, query or fragment, "+
			"e.g. https://api.example.com", c.BaseURL)
	}
	if !mode.Sandbox() && u.Scheme != "https" {
		return "", fmt.Errorf("--base-url %q: production is served over https (behind your TLS proxy)", c.BaseURL)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// defaultOperatorServer is where the operator tools look for the running
// server's operator API unless told (--server, CRYPTOVPS_SERVER), reading
// the environment serve was given: the operator listener of
// CRYPTOVPS_ADMIN_ADDR, or the production default when CRYPTOVPS_CLOUD or
// CRYPTOVPS_PAYMENTS names a real upstream, else serve's default public
// address, where the sandbox keeps the operator API.
func defaultOperatorServer() string {
	addr := os.Getenv("CRYPTOVPS_ADMIN_ADDR")
	if addr == "" && (os.Getenv("CRYPTOVPS_CLOUD") != "" && os.Getenv("CRYPTOVPS_CLOUD") != domain.UpstreamSandbox ||
		os.Getenv("CRYPTOVPS_PAYMENTS") != "" && os.Getenv("CRYPTOVPS_PAYMENTS") != domain.UpstreamSandbox) {
		addr = defaultAdminAddr
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		return "http://" + net.JoinHostPort(host, port)
	}
	return "http://localhost:8080"
}

// notOperatorHint follows a 404 from the operator API: the likely mistake
// is a --server that is the public listener of a serve with --admin-addr.
const notOperatorHint = " (is --server the operator listener? With --admin-addr, and by default in production at " +
	defaultAdminAddr + ", serve answers /admin and /metrics only there: give --server http://ADMIN-ADDR or set CRYPTOVPS_ADMIN_ADDR)"
