package api

import (
	"bytes"
	_ "embed"
	"net/http"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/domain"
)

//go:embed llms.txt
var llmsSource string

var llmsTemplate = template.Must(template.New("llms.txt").Parse(llmsSource))

// GuideParams are the deployment facts /llms.txt prints.
type GuideParams struct {
	// SignupCredit is what a new account gets.
	SignupCredit domain.Money
	// ProvisionDelay and BackupDelay are the sandbox's delays.
	ProvisionDelay, BackupDelay time.Duration
	// Image is the operating system new servers get.
	Image string
}

// guideText is what the /llms.txt template prints: every amount and
// duration already in words a reader expects ("10.00", "60 s", "15 min").
type guideText struct {
	BaseURL        string
	Sandbox        bool
	SignupCredit   string
	ProvisionDelay string
	BackupDelay    string
	TokenTTL       string
	TokenSeconds   int
	Currencies     string
	Plans          string
	Regions        string
	Image          string
}

// humanDuration says a duration the way a person writes it: "60 s" up to
// two minutes, "3 min" up to two hours, then "2 h" (whole units; rounded
// down past a second, which none of ours has).
func humanDuration(d time.Duration) string {
	switch {
	case d >= 2*time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + " h"
	case d >= 2*time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	case d >= time.Second:
		return strconv.FormatInt(int64(d/time.Second), 10) + " s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
}

// guide renders /llms.txt for this deployment from the same catalog /plans
// and /regions answer with.
func (s *Server) guide(baseURL string) string {
	cat := s.app.Catalog
	var plans, regions []string
	for _, p := range cat.Plans {
		plans = append(plans, p.ID+" "+p.Name+" ("+itoa(p.VCPUs)+" vCPU / "+itoa(p.RAMGB)+" GB / "+itoa(p.DiskGB)+" GB, $"+p.MonthlyPrice.Canonical()+"/mo, $"+p.HourlyPrice.Canonical()+"/h)")
	}
	for _, r := range cat.Regions {
		regions = append(regions, r.ID)
	}
	g := s.cfg.Guide
	p := guideText{BaseURL: baseURL, Sandbox: s.sandbox != nil, SignupCredit: g.SignupCredit.Canonical(),
		ProvisionDelay: humanDuration(g.ProvisionDelay), BackupDelay: humanDuration(g.BackupDelay),
		TokenTTL: humanDuration(s.cfg.TokenTTL), TokenSeconds: int(s.cfg.TokenTTL / time.Second),
		Currencies: strings.Join(domain.Currencies, ", "), Plans: strings.Join(plans, " · "),
		Regions: strings.Join(regions, " "), Image: g.Image}
	if p.Image == "" {
		p.Image = "Ubuntu 24.04 LTS x64 (simulated in the sandbox)"
	}
	var b bytes.Buffer
	if err := llmsTemplate.Execute(&b, p); err != nil {
		return "guide unavailable: " + err.Error()
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// llms is GET /llms.txt with the configured base URL: never the request's
// Host header, which would let anyone who can put a link in front of an
// agent (or poison a cache) point its guide at their own host.
func (s *Server) llms(c echo.Context) error {
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(s.guide(s.cfg.BaseURL)))
}
