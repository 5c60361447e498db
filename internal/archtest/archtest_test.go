package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/payper/payper"

type pkg struct {
	ImportPath string
	Doc        string
	Standard   bool
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestEveryPackageIsDocumented(t *testing.T) {
	for name, p := range listPackages(t) {
		if p.Doc == "" {
			t.Errorf("package %s has no package doc comment", name)
		}
	}
}

// TestImportRules keeps dependencies pointing inward (DESIGN §6): wire types and money know only
// the standard library, the SDK knows no store, proxy or RPC client, only the chain adapter dials
// a node, and only the wiring sees the whole configuration.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	rules := []struct {
		pkg     string
		allowed func(dep string) bool // for every transitive dependency
		why     string
	}{
		{"x402", isStdlib, "wire types import only the standard library"},
		{"money", isStdlib, "money imports only the standard library"},
		{"proxy", func(d string) bool { return isStdlib(d) || d == module+"/breaker" || d == module+"/backoff" },
			"the proxy knows nothing about payments"},
		{"breaker", isStdlib, "the circuit breaker imports only the standard library"},
		{"backoff", isStdlib, "retry schedules import only the standard library"},
		{"pricing", func(d string) bool { return isStdlib(d) || d == module+"/money" }, "pricing is pure"},
		{"store", func(d string) bool { return isStdlib(d) }, "the store's interface has no driver"},
		{"client", func(d string) bool {
			return !strings.Contains(d, "/paywall") && !strings.Contains(d, "/proxy") && !strings.Contains(d, module+"/store") &&
				!strings.Contains(d, module+"/chain") && !strings.Contains(d, module+"/internal") &&
				!strings.Contains(d, "go-ethereum/ethclient") && !strings.Contains(d, "go-ethereum/rpc")
		}, "the SDK knows no store, proxy or RPC client"},
		{"scheme/exact", func(d string) bool {
			return d != "net/http" && !strings.Contains(d, "go-ethereum/ethclient") &&
				!strings.Contains(d, module+"/paywall") && !strings.Contains(d, module+"/client") && !strings.Contains(d, module+"/store")
		}, "the scheme knows no HTTP server, store or RPC client"},
		{"paywall", func(d string) bool {
			return !strings.Contains(d, module+"/chain") && !strings.Contains(d, module+"/store") &&
				!strings.Contains(d, module+"/proxy") && !strings.Contains(d, "go-ethereum")
		}, "the paywall sees schemes only through its Method interface"},
	}
	for _, r := range rules {
		p, ok := pkgs[r.pkg]
		if !ok {
			t.Errorf("package %s not found", r.pkg)
			continue
		}
		for _, d := range p.Deps {
			if !r.allowed(d) {
				t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
			}
		}
	}
	for name, p := range pkgs {
		for _, imp := range p.Imports {
			switch {
			case strings.HasPrefix(imp, "github.com/ethereum/go-ethereum/ethclient") && name != "chain/evm":
				t.Errorf("%s imports %s: only chain/evm talks to a node", name, imp)
			case imp == module+"/config" && name != "internal/app" && name != "cmd/payper":
				t.Errorf("%s imports config: only the wiring sees the whole configuration", name)
			case imp == "database/sql" && !strings.HasPrefix(name, "store") && name != "internal/pgtest":
				// internal/pgtest only creates and drops databases for tests.
				t.Errorf("%s imports database/sql: only the store talks to a database", name)
			case imp == module+"/internal/app" && name != "cmd/payper" && name != "interop" && name != "bench" && name != "internal/devtest":
				t.Errorf("%s imports internal/app", name)
			}
		}
	}
}
