package e2e_test

import (
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/opsmetrics/opsmetrics/"

// floors are the packages of the module by floor (docs/architecture.md).
// A package imports only packages of lower floors: the ground floor
// (internal/) below the domain packages, in the order data flows (ingest →
// store → metrics → baselines → anomaly → dashboards), the features beside
// them, and the commands and whole-pipeline tests on top. Packages of one
// floor do not import each other. A new package needs its floor here.
var floors = map[string]int{
	// Ground floor: each imports only what is below it.
	"internal/event":       0,
	"internal/config":      0,
	"internal/chsql":       0,
	"internal/broker":      0,
	"internal/localserver": 0,
	"internal/calendar":    0,
	"internal/catalog":     0,

	"internal/store":                    1,
	"internal/telemetry":                1,
	"internal/generator":                1,
	"internal/publish":                  1,
	"internal/eventfixtures":            1,
	"internal/localserver/clickhouse":   1,
	"internal/localserver/alertmanager": 1,
	"internal/localserver/zookeeper":    1,

	"internal/testenv": 2,

	// Domain floor, in the order data flows.
	"ingest":     10,
	"metrics":    11,
	"baselines":  12,
	"anomaly":    13,
	"dashboards": 14,

	// Features beside the domain.
	"report": 15,
	"api":    15,
	"demo":   16,

	// Top: commands, and packages of tests only.
	"e2e":            20,
	"deploy":         20,
	"cmd/opsmetrics": 21,
}

// testSupport are the packages that only tests (and the demo and the
// commands, for the tools) may import, whatever their floor: the test
// harness, fixtures, the event generator and producer, and the local
// servers.
var testSupport = map[string]bool{
	"internal/testenv": true, "internal/eventfixtures": true, "internal/generator": true, "internal/publish": true,
	"internal/localserver": true, "internal/localserver/clickhouse": true, "internal/localserver/alertmanager": true,
	"internal/localserver/zookeeper": true,
}

// usesTools are the packages whose own code may use the tools and local
// servers: the demo runs them, the commands offer them, and they are test
// support themselves. Nothing but tests imports the test harness or the
// fixtures.
var usesTools = map[string]bool{"demo": true, "cmd/opsmetrics": true, "internal/testenv": true,
	"internal/localserver/clickhouse": true, "internal/localserver/alertmanager": true, "internal/localserver/zookeeper": true}

// TestImportFloors checks every import of the module, of its code and of
// its tests, against the floors: no arrow runs back up or sideways.
func TestImportFloors(t *testing.T) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .TestImports \",\"}}|{{join .XTestImports \",\"}}", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		pkg := strings.TrimPrefix(f[0], module)
		from, ok := floors[pkg]
		if !ok {
			bad = append(bad, pkg+": no floor (add it to floors and docs/architecture.md)")
			continue
		}
		for i, list := range f[1:] {
			test := i > 0
			for _, imp := range strings.Split(list, ",") {
				dep, ours := strings.CutPrefix(imp, module)
				if !ours || dep == pkg {
					continue
				}
				to, known := floors[dep]
				switch {
				case !known:
					bad = append(bad, pkg+" imports "+dep+", which has no floor")
				case test && testSupport[dep]:
				case !test && testSupport[dep] && dep != "internal/testenv" && dep != "internal/eventfixtures" && usesTools[pkg]:
				case testSupport[dep]:
					bad = append(bad, pkg+" imports the test support "+dep+" outside its tests")
				case to >= from:
					kind := "imports"
					if test {
						kind = "imports in its tests"
					}
					bad = append(bad, pkg+" "+kind+" "+dep+", which is not below it")
				}
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}
