package vultr

import (
	"testing"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/cryptovps/cryptovps/domain"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestStatusMapping(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, err := New(Config{APIKey: "k", Clock: fixedClock(now), ActivationTimeout: 10 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recent, old := "2026-03-01T11:55:00+00:00", "2026-03-01T11:40:00+00:00"
	cases := []struct {
		name                      string
		status, power, server, ip string
		created                   string
		want                      string
		wantIP                    string
	}{
		{"pending", "pending", "running", "none", "0.0.0.0", recent, domain.InstancePending, ""},
		{"active but booting", "active", "running", "installingbooting", "192.0.2.9", recent, domain.InstancePending, ""},
		{"ok but no address yet", "active", "running", "ok", "0.0.0.0", recent, domain.InstancePending, ""},
		{"ok but empty address", "active", "running", "ok", "", recent, domain.InstancePending, ""},
		{"locked", "active", "running", "locked", "192.0.2.9", recent, domain.InstancePending, ""},
		{"active", "active", "running", "ok", "192.0.2.9", recent, domain.InstanceActive, "192.0.2.9"},
		{"halted", "active", "stopped", "ok", "192.0.2.9", old, domain.InstanceHalted, "192.0.2.9"},
		{"suspended by Vultr", "suspended", "stopped", "ok", "192.0.2.9", old, domain.InstancePending, ""},
		{"resizing", "resizing", "running", "ok", "192.0.2.9", old, domain.InstancePending, ""},
		{"pending too long", "pending", "running", "none", "0.0.0.0", old, domain.InstanceError, ""},
		{"pending, unreadable date", "pending", "running", "none", "0.0.0.0", "yesterday", domain.InstancePending, ""},
	}
	for _, tc := range cases {
		in := &govultr.Instance{ID: "i", Status: tc.status, PowerStatus: tc.power, ServerStatus: tc.server,
			MainIP: tc.ip, DateCreated: tc.created, Tags: []string{"other", DefaultTagPrefix + "srv-1"}}
		v := c.view(in)
		if v.Status != tc.want || v.IPv4 != tc.wantIP || v.Tag != "srv-1" {
			t.Errorf("%s: %+v, want %s %q", tc.name, v, tc.want, tc.wantIP)
		}
		if (v.Status == domain.InstanceError) != (v.Error != "") {
			t.Errorf("%s: error text %q with status %s", tc.name, v.Error, v.Status)
		}
	}
}

func TestSnapshotMapping(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, _ := New(Config{APIKey: "k", Clock: fixedClock(now), SnapshotTimeout: time.Hour}, nil)
	for _, tc := range []struct{ status, created, want string }{
		{"pending", "2026-03-01T11:30:00+00:00", domain.SnapshotPending},
		{"complete", "2026-03-01T08:00:00+00:00", domain.SnapshotComplete},
		{"pending", "2026-03-01T10:30:00+00:00", domain.SnapshotError},
	} {
		v := c.snapView(&govultr.Snapshot{ID: "s", Status: tc.status, DateCreated: tc.created, Description: DefaultTagPrefix + "b-1"})
		if v.Status != tc.want || v.Tag != "b-1" {
			t.Errorf("%s created %s: %+v, want %s", tc.status, tc.created, v, tc.want)
		}
	}
}

func TestHostname(t *testing.T) {
	for in, want := range map[string]string{
		"My Web_Server.1": "my-web-server-1", "--x--": "x", "ünïcode": "ncode", "": "",
	} {
		if got := hostname(in); got != want {
			t.Errorf("hostname(%q) = %q, want %q", in, got, want)
		}
	}
}
