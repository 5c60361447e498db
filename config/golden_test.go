package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file.\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestGoldenEffectiveConfig pins the configuration that full.yaml turns
// into after defaults and path resolution.
func TestGoldenEffectiveConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "testdata")
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/full.effective.yaml", string(out))
}

// TestGoldenErrors parses each testdata/bad/*.yaml and compares the whole
// error text with the .err file beside it.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data, "")
			if err == nil {
				t.Fatalf("parsed without error: %+v", c)
			}
			if c != nil {
				t.Error("returned a config along with an error")
			}
			checkGolden(t, strings.TrimSuffix(file, ".yaml")+".err", err.Error()+"\n")
		})
	}
}

func TestExampleParses(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "/srv/payper")
	if err != nil {
		t.Fatal(err)
	}
	if c.SettlerKeyFile != "/srv/payper/settler.key" || c.Database.DSN != "/srv/payper/payper-data/payper.db" {
		t.Errorf("paths not resolved: key %q, dsn %q", c.SettlerKeyFile, c.Database.DSN)
	}
	rules, err := c.PricingRules()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || rules[0].Price.Int64() != 1000 || rules[1].Price.Int64() != 50000 || c.RouteFlow(2) != FlowAuto {
		t.Errorf("rules = %+v", rules)
	}
}
