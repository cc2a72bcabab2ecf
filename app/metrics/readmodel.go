package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// scrapeTimeout bounds what one scrape may spend asking the store and the
// read model: a scrape must answer even when they do not.
const scrapeTimeout = 5 * time.Second

// NegativeBalances is a read model that can count the accounts it shows
// below zero (both read models can).
type NegativeBalances interface {
	NegativeBalances(ctx context.Context) (int, error)
}

// WatchReadModel exports, at each scrape, how far the read model (called
// name: memory, postgres) is behind the log, in events and in seconds, and
// how many accounts it shows with a negative balance. They are measured
// when scraped, not kept up to date, so an idle process costs nothing.
func (m *Metrics) WatchReadModel(store eventstore.Store, model projections.Model, name string) {
	l := prometheus.Labels{"read_model": name}
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+metric, help, nil, l)
	}
	m.reg.MustRegister(&readModel{store: store, model: model, now: time.Now,
		up: desc("read_model_up", "1 when the read model and the event store answered the scrape, 0 when either did not (then the lag is not exported)."),
		lagEvents: desc("projection_lag_events",
			fmt.Sprintf("Events in the log the read model has not applied (counted up to %d).", projections.LagCountLimit)),
		lagSeconds: desc("projection_lag_seconds", "Age of the oldest event the read model has not applied; 0 when caught up."),
		negative: desc("negative_balances",
			"Accounts the read model shows with a balance below zero: a broken billing invariant, must stay 0."),
	})
}

type readModel struct {
	store                               eventstore.Store
	model                               projections.Model
	now                                 func() time.Time
	up, lagEvents, lagSeconds, negative *prometheus.Desc
}

func (r *readModel) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{r.up, r.lagEvents, r.lagSeconds, r.negative} {
		ch <- d
	}
}

func (r *readModel) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	lag, err := projections.MeasureLag(ctx, r.store, r.model, projections.LagCountLimit, r.now())
	up := 1.0
	if err != nil {
		up = 0
	} else {
		ch <- prometheus.MustNewConstMetric(r.lagEvents, prometheus.GaugeValue, float64(lag.Events))
		ch <- prometheus.MustNewConstMetric(r.lagSeconds, prometheus.GaugeValue, lag.Age.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(r.up, prometheus.GaugeValue, up)
	if nb, ok := r.model.(NegativeBalances); ok {
		if n, err := nb.NegativeBalances(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(r.negative, prometheus.GaugeValue, float64(n))
		}
	}
}
