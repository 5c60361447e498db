package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
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
	// The imports of the package's tests, in the package and outside it (_test).
	TestImports, XTestImports []string
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

// isStoreDriver reports a database driver of the store (the store's interface is not one).
func isStoreDriver(dep string) bool {
	return strings.HasPrefix(dep, module+"/store/") && dep != module+"/store/storetest"
}

// engineDep keeps the settlement engine below the payment methods and above the chain adapter:
// chains reach it through interfaces it declares, and its outcome vocabulary is its own.
func engineDep(d string) bool {
	return !strings.HasPrefix(d, module+"/chain/") && d != module+"/paywall" &&
		!strings.HasPrefix(d, module+"/method/") && !isStoreDriver(d)
}

// methodDep keeps a payment method off the chain adapter and off the other method.
func methodDep(other string) func(string) bool {
	return func(d string) bool {
		return !strings.HasPrefix(d, module+"/chain/") && d != module+"/"+other && !isStoreDriver(d) &&
			!strings.Contains(d, "go-ethereum/ethclient")
	}
}

// schemeDep keeps a scheme binding pure: no HTTP, no node, no store, no engine.
func schemeDep(d string) bool {
	for _, banned := range []string{"/chain/", "/store", "/paywall", "/settle", "/method/", "/client", "/proxy"} {
		if strings.HasPrefix(d, module+banned) {
			return false
		}
	}
	return d != "net/http" && !strings.Contains(d, "go-ethereum/ethclient") && d != "github.com/ethereum/go-ethereum/rpc"
}

// TestOnlyTheWiringJoinsChainsToMethods: the chain adapter is mapped onto the payment methods'
// chain interfaces in one place, the wiring (and by the CLI and the end-to-end suites that build
// gateways of their own); nothing else, tests included, puts the two together.
func TestOnlyTheWiringJoinsChainsToMethods(t *testing.T) {
	wiring := map[string]bool{"internal/app": true, "cmd/payper": true, "interop": true, "bench": true, "internal/devtest": true}
	for name, p := range listPackages(t) {
		if wiring[name] {
			continue
		}
		var chain, method string
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			switch {
			case strings.HasPrefix(imp, module+"/chain/evm"):
				chain = imp
			case strings.HasPrefix(imp, module+"/method/"):
				method = imp
			}
		}
		if chain != "" && method != "" {
			t.Errorf("%s imports both %s and %s: only internal/app wires chain adapters to payment methods", name, chain, method)
		}
	}
}

func TestEveryPackageIsDocumented(t *testing.T) {
	for name, p := range listPackages(t) {
		if p.Doc == "" {
			t.Errorf("package %s has no package doc comment", name)
		}
	}
}

// TestImportRules keeps dependencies pointing inward (DESIGN §6): wire types and money know only
// the standard library, the SDK knows no store, proxy or RPC client, scheme bindings do no I/O,
// the settlement engine knows no chain adapter, paywall, payment method or store driver, a payment
// method knows no chain adapter and no other method, only the chain adapter dials a node, and only
// the wiring sees the whole configuration.
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
		{"settle", engineDep, "the settlement engine knows no chain adapter, paywall, payment method or store driver"},
		{"settle/txn", engineDep, "the settlement engine knows no chain adapter, paywall, payment method or store driver"},
		{"settle/account", engineDep, "the settlement engine knows no chain adapter, paywall, payment method or store driver"},
		{"method/exact", methodDep("method/batch"), "a payment method reaches the chain and the store through interfaces it declares, and knows no other method"},
		{"method/batch", methodDep("method/exact"), "a payment method reaches the chain and the store through interfaces it declares, and knows no other method"},
		{"scheme/exact", schemeDep, "a scheme binding does no I/O"},
		{"scheme/batch", schemeDep, "a scheme binding does no I/O"},
		{"scheme/evmsig", schemeDep, "a scheme binding does no I/O"},
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
			case imp == "github.com/ethereum/go-ethereum/rpc" && name != "chain/evm" && name != "chain/devchain":
				// The embedded dev chain serves JSON-RPC; it dials nothing.
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
