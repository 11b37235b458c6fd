package ingest

import (
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// owners is what the service catalog said of a batch's events: how many
// took their team from it, by kind, and how many sent a team other than
// their service's owner, by service (as the catalog spells it) and that
// owner.
type owners struct {
	filled     map[event.Kind]int
	mismatched map[[2]string]int
}

// fillOwners gives the events of records that name a service the catalog
// knows and sent no team their service's owner, and counts those that sent
// another team, which keep it (catalog.Catalog.Team). It runs after the
// batch's ids are claimed: an event's identity is its content as sent, so
// a replay after the catalog changed is no id conflict (it is stored again
// with the owner of the day).
func (in *Ingester) fillOwners(records []store.Record) owners {
	var o owners
	if in.cfg.Catalog == nil {
		return o
	}
	cat := in.cfg.Catalog()
	if cat.Len() == 0 {
		return o
	}
	for _, r := range records {
		service, team := r.Event.Owner()
		if service == "" || team == nil {
			continue
		}
		t := cat.Team(service, *team)
		switch {
		case t.FromCatalog && t.Name != "":
			*team = t.Name
			if o.filled == nil {
				o.filled = map[event.Kind]int{}
			}
			o.filled[r.Event.Kind]++
		case t.Mismatch:
			e, _ := cat.Lookup(service)
			if o.mismatched == nil {
				o.mismatched = map[[2]string]int{}
			}
			o.mismatched[[2]string{e.Name, t.Catalog}]++
		}
	}
	return o
}

// countOwners records a committed batch's owners in the metrics. The
// mismatch counter's labels are the catalog's services and owners, so
// its cardinality is the catalog's size whatever the events send.
func (in *Ingester) countOwners(o owners) {
	for k, n := range o.filled {
		in.metrics.teamFromCatalog.WithLabelValues(string(k)).Add(float64(n))
	}
	for k, n := range o.mismatched {
		in.metrics.teamMismatch.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
}
