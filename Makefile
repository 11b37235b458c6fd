# opsmetrics: `make demo` runs the pipeline end to end, `make test` runs every test.
GO       ?= go
BIN      := bin/opsmetrics
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS     := clickhouse-server clickhouse-client kcat prometheus-alertmanager prometheus zookeeper

.PHONY: all build deps demo test vet fuzz bench-ingest bench-ingest-scale bench-kpi bench-anomaly bench-learn bench-alert reliability clean

all: build

# COMMIT is the short commit, with -dirty when tracked files have changes:
# `opsmetrics --version` prints it even where GOFLAGS has -buildvcs=false.
COMMIT   := $(shell c=$$(git rev-parse --short HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null || c=$$c-dirty; } && echo $$c)

build:
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o $(BIN) ./cmd/opsmetrics

# deps installs the Debian packages the demo and the tests run against, when missing.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: deps build
	./$(BIN) demo

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

test: deps vet
	$(GO) test -race -count=1 -timeout 25m ./...

# fuzz runs each decoder fuzz target for FUZZTIME (default 30s): FuzzDecode (no
# input breaks the decoder), FuzzDecodeScanner (decoding with the JSON scanner
# gives what encoding/json alone gives), FuzzScan and FuzzSemverGrammar (the
# scanner and the version parser against their references).
FUZZTIME ?= 30s
FUZZ_TARGETS = FuzzDecode FuzzDecodeScanner FuzzScan FuzzSemverGrammar
fuzz:
	for t in $(FUZZ_TARGETS); do $(GO) test ./internal/event -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) || exit 1; done

# bench-ingest measures end-to-end ingestion of 1M events against clickhouse-client.
BENCH_EVENTS ?= 1000000
bench-ingest: deps build
	OPSMETRICS_BENCH_EVENTS=$(BENCH_EVENTS) $(GO) test ./ingest -run '^$$' -bench '^BenchmarkIngestEndToEnd$$' -benchtime 1x -timeout 60m -v

# bench-ingest-scale is bench-ingest with 12 partitions and 1, 2 and 3
# ingesters in one consumer group.
bench-ingest-scale: deps build
	OPSMETRICS_BENCH_EVENTS=$(BENCH_EVENTS) $(GO) test ./ingest -run '^$$' -bench '^BenchmarkIngestScaleOut$$' -benchtime 1x -timeout 60m -v

clean:
	rm -rf bin

# bench-anomaly measures precision, recall and delay of anomaly detection on
# labelled series, against a global z-score and a seasonal median/MAD, and
# scores the dense model NAB's way on synthetic series and, when its mirror
# is there (OPSMETRICS_NAB_GIT_DIR), the Numenta Anomaly Benchmark; and the
# coverage of forecasts on held-out fortnights against their nominal level.
bench-anomaly: deps
	$(GO) test ./anomaly -run '^$$' -bench '^Benchmark(AnomalyQuality|DenseQuality|ForecastCoverage)$$' -benchtime 1x -timeout 30m -v

# bench-alert measures the latency from incidents produced to Kafka to their
# alert listed by Alertmanager, through the ingester, ClickHouse and the
# scheduled detection, against one evaluation interval (10s here) plus 5s.
bench-alert: deps
	$(GO) test ./anomaly -run '^$$' -bench '^BenchmarkAlertLatency$$' -benchtime 1x -timeout 10m -v

# bench-learn times learning baselines for LEARN_SERIES (default 10,000) hourly
# series of a year against reading their points from ClickHouse.
bench-learn: deps
	OPSMETRICS_LEARN_SERIES=$(or $(LEARN_SERIES),10000) $(GO) test ./baselines -run '^$$' -bench '^BenchmarkLearnHourlyYear$$' -benchtime 1x -timeout 60m -v

# bench-kpi times the KPI summary over 10M events against a plain scan.
bench-kpi: deps
	OPSMETRICS_BENCH_EVENTS=$(or $(KPI_BENCH_EVENTS),10000000) $(GO) test ./e2e -run '^$$' -bench '^BenchmarkKPISummary$$' -benchtime 1x -timeout 60m -v

# reliability runs the reliability suite (at most 10 minutes) and prints its figures.
reliability: deps
	OPSMETRICS_RELIABILITY=1 $(GO) test ./e2e -run '^TestReliability$$' -count=1 -timeout 15m -v
