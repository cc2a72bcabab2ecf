package domain

import "fmt"

// Plan is a server size from the catalog.
type Plan struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	VCPUs        int    `json:"vcpus"`
	RAMGB        int    `json:"ramGb"`
	DiskGB       int    `json:"diskGb"`
	MonthlyPrice Money  `json:"monthlyPrice"`
	HourlyPrice  Money  `json:"hourlyPrice"`
}

// Region is a data center from the catalog.
type Region struct {
	ID        string `json:"id"`
	City      string `json:"city"`
	Country   string `json:"country"`
	Continent string `json:"continent"`
}

// HoursPerMonth is the divisor that turns a monthly price into an hourly one.
const HoursPerMonth = 730

// HourlyPrice is monthly / 730, rounded half-up to 3 decimals.
func HourlyPrice(monthly Money) Money {
	var q, hours Money
	hours.d.SetInt64(HoursPerMonth)
	if _, err := decimalContext().Quo(&q.d, &monthly.d, &hours.d); err != nil {
		panic(fmt.Sprintf("hourly price of %s: %v", monthly, err))
	}
	return q.Round(3)
}

// Catalog is what can be deployed where.
type Catalog struct {
	Plans   []Plan
	Regions []Region
}

// Plan finds a plan by id.
func (c Catalog) Plan(id string) (Plan, bool) {
	for _, p := range c.Plans {
		if p.ID == id {
			return p, true
		}
	}
	return Plan{}, false
}

// Region finds a region by id.
func (c Catalog) Region(id string) (Region, bool) {
	for _, r := range c.Regions {
		if r.ID == id {
			return r, true
		}
	}
	return Region{}, false
}

// DefaultCatalog is the guide's five plans and twenty-nine regions.
func DefaultCatalog() Catalog {
	plan := func(id, name string, cpu, ram, disk int, monthly string) Plan {
		m := MustMoney(monthly)
		return Plan{ID: id, Name: name, VCPUs: cpu, RAMGB: ram, DiskGB: disk, MonthlyPrice: m, HourlyPrice: HourlyPrice(m)}
	}
	return Catalog{
		Plans: []Plan{
			plan("vc2-1c-1gb", "Micro", 1, 1, 25, "10.00"),
			plan("vc2-1c-2gb", "Starter", 1, 2, 55, "18.00"),
			plan("vc2-2c-4gb", "Standard", 2, 4, 80, "34.00"),
			plan("vc2-4c-8gb", "Pro", 4, 8, 160, "62.00"),
			plan("vc2-6c-16gb", "Beast", 6, 16, 320, "120.00"),
		},
		Regions: []Region{
			{"ams", "Amsterdam", "NL", "Europe"},
			{"fra", "Frankfurt", "DE", "Europe"},
			{"par", "Paris", "FR", "Europe"},
			{"lon", "London", "GB", "Europe"},
			{"mad", "Madrid", "ES", "Europe"},
			{"waw", "Warsaw", "PL", "Europe"},
			{"sto", "Stockholm", "SE", "Europe"},
			{"ewr", "New Jersey", "US", "North America"},
			{"ord", "Chicago", "US", "North America"},
			{"dfw", "Dallas", "US", "North America"},
			{"atl", "Atlanta", "US", "North America"},
			{"mia", "Miami", "US", "North America"},
			{"sea", "Seattle", "US", "North America"},
			{"lax", "Los Angeles", "US", "North America"},
			{"sjc", "Silicon Valley", "US", "North America"},
			{"yto", "Toronto", "CA", "North America"},
			{"mex", "Mexico City", "MX", "North America"},
			{"sao", "São Paulo", "BR", "South America"},
			{"scl", "Santiago", "CL", "South America"},
			{"nrt", "Tokyo", "JP", "Asia"},
			{"icn", "Seoul", "KR", "Asia"},
			{"sgp", "Singapore", "SG", "Asia"},
			{"blr", "Bangalore", "IN", "Asia"},
			{"bom", "Mumbai", "IN", "Asia"},
			{"del", "Delhi NCR", "IN", "Asia"},
			{"syd", "Sydney", "AU", "Australia"},
			{"mel", "Melbourne", "AU", "Australia"},
			{"jnb", "Johannesburg", "ZA", "Africa"},
			{"tlv", "Tel Aviv", "IL", "Asia"},
		},
	}
}

// Spec prices a server of plan in region: the catalog rule of a deploy. An
// unknown plan or region is refused naming each field at fault.
func (c Catalog) Spec(plan, region string) (ServerSpec, error) {
	fields := map[string]string{}
	p, ok := c.Plan(plan)
	if !ok {
		fields["planId"] = "unknown plan: see GET /plans"
	}
	if _, ok := c.Region(region); !ok {
		fields["regionId"] = "unknown region: see GET /regions"
	}
	if len(fields) > 0 {
		return ServerSpec{}, Invalid(fields)
	}
	return ServerSpec{Plan: p.ID, Region: region, HourlyPrice: p.HourlyPrice}, nil
}
