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

// GuideParams is what /llms.txt says about this deployment.
type GuideParams struct {
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
	// Image is the operating system new servers get.
	Image string
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		return strings.TrimSuffix(d.String(), "0m0s")
	case d%time.Minute == 0 && d >= time.Minute:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}

// guide renders /llms.txt for this deployment from the same catalog /plans
// and /regions answer with.
func (s *Server) guide(baseURL string) string {
	cat := s.app.Catalog
	var plans, regions []string
	for _, p := range cat.Plans {
		plans = append(plans, p.ID+" "+p.Name+" ("+itoa(p.VCPUs)+" vCPU / "+itoa(p.RAMGB)+" GB / "+itoa(p.DiskGB)+" GB, $"+p.MonthlyPrice.Fixed(2)+"/mo, $"+p.HourlyPrice.Fixed(3)+"/h)")
	}
	for _, r := range cat.Regions {
		regions = append(regions, r.ID)
	}
	p := s.cfg.Guide
	p.BaseURL = baseURL
	p.Sandbox = s.sandbox != nil
	p.TokenTTL = humanDuration(s.cfg.TokenTTL)
	p.TokenSeconds = int(s.cfg.TokenTTL / time.Second)
	p.Currencies = strings.Join(domain.Currencies, ", ")
	p.Plans = strings.Join(plans, " · ")
	p.Regions = strings.Join(regions, " ")
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
