package app

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealedSecretsOpenOnlyWithTheirKey(t *testing.T) {
	t.Parallel()
	s, err := NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("hunter2-root")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatalf("sealed form shows the secret: %s", sealed)
	}
	if again, _ := s.Seal("hunter2-root"); again == sealed {
		t.Fatal("two seals of one secret are equal: the nonce is not fresh")
	}
	if got, err := s.Open(sealed); err != nil || got != "hunter2-root" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("another key opened the secret")
	}
	for _, bad := range []string{"", "v1:", "v1:!!", "v2:" + sealed[3:], sealed[:len(sealed)-2]} {
		if _, err := s.Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}
