package generator

import (
	"strconv"
	"time"
)

// serviceNames are the first services' names; later services reuse them with
// a numeric suffix ("checkout-2").
var serviceNames = []string{
	"checkout", "payments-api", "cart", "catalog", "search", "user-profile",
	"auth", "notifications", "inventory", "shipping", "pricing",
	"recommendations", "orders", "billing", "api-gateway", "web-frontend",
	"mobile-bff", "reviews", "ledger", "fraud-detection", "email-sender",
	"image-resizer", "reporting", "analytics-ingest", "feature-flags",
	"session-store", "tax-calculator", "loyalty", "returns", "warehouse-sync",
	"currency-rates", "address-validation", "webhooks", "audit-log",
	"scheduler", "invoice-renderer", "support-desk", "ads-serving",
	"media-cdn", "config-service",
}

// teamNames are the first teams' names; later teams reuse them with a suffix.
var teamNames = []string{
	"storefront", "payments", "platform", "identity", "fulfillment", "growth",
	"data", "mobile", "search-relevance", "sre", "risk", "marketplace",
}

// teamOffsets are the teams' fixed UTC offsets (no daylight saving time),
// assigned in turn: the working hours that shape deployments are local.
var teamOffsets = []time.Duration{
	1 * time.Hour, -5 * time.Hour, 0, -8 * time.Hour, 5*time.Hour + 30*time.Minute,
	9 * time.Hour, 2 * time.Hour, -3 * time.Hour, 10 * time.Hour,
}

var firstNames = []string{
	"alice", "bilal", "chen", "dana", "emeka", "farah", "goran", "hana",
	"ivan", "jun", "kofi", "lena", "mateo", "nadia", "omar", "priya", "quinn",
	"rosa", "sven", "tariq", "uma", "viktor", "wen", "yusuf", "zoe",
}

var lastNames = []string{
	"adams", "bauer", "costa", "diaz", "eriksen", "fischer", "garcia", "haddad",
	"ito", "jensen", "kim", "lopez", "mensah", "novak", "okafor", "patel",
	"rossi", "silva", "tanaka", "weber",
}

// incidentTitles complete "<service>: " into an incident title.
var incidentTitles = []string{
	"elevated 5xx error rate", "p99 latency above SLO", "pods in crash loop",
	"database connection pool exhausted", "queue backlog growing",
	"TLS certificate expired", "upstream provider timeouts",
	"memory leak causing OOM kills", "partial outage in one region",
	"stale cache serving wrong data", "disk full on primary",
	"elevated login failures",
}

// nthName returns the i-th name of list, suffixed with the round number once
// the list is exhausted, so that names stay unique.
func nthName(list []string, i int) string {
	name := list[i%len(list)]
	if round := i / len(list); round > 0 {
		name += "-" + strconv.Itoa(round+1)
	}
	return name
}

// authorsPerTeam is how many engineers commit to each team's services.
const authorsPerTeam = 6

// author returns the j-th engineer of team t.
func author(t, j int) string {
	n := t*authorsPerTeam + j
	return firstNames[n%len(firstNames)] + "." + lastNames[(n*7+n/len(firstNames))%len(lastNames)]
}
