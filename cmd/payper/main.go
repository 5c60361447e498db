// Command payper runs the Payper gateway, its dev environment, and a curl-like client that pays
// x402 APIs. Run `payper help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `payper — charge for an HTTP API per request, paid in stablecoins over x402.

Usage:
  payper dev [flags]                 run everything locally: chain, token, demo API, gateway
  payper gateway --config FILE       run the gateway in front of your API
  payper pay [flags] URL             make a request, paying the 402 if one comes back
  payper channel open|status|withdraw|refund ...
                                     escrow channels: deposit once, then pay each request by voucher
  payper balance [flags] ADDRESS...  show token balances
  payper keys new --out FILE         create a private key file
  payper config validate FILE        check a gateway configuration file

Run "payper COMMAND -h" for a command's flags. Flags can also be set with PAYPER_* environment
variables, named after the flag (--rpc-listen → PAYPER_RPC_LISTEN).
`

// errUsage marks a command-line mistake: the message has been printed, exit 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "payper:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "gateway":
		return runGateway(ctx, rest, stderr)
	case "pay":
		return runPay(ctx, rest, stdout, stderr)
	case "channel":
		return runChannel(ctx, rest, stdout, stderr)
	case "balance":
		return runBalance(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(rest, stdout, stderr)
	case "config":
		return runConfig(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "payper: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// newFlagSet returns a flag set that prints its usage to stderr and returns errors.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: payper %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args after filling unset flags from PAYPER_* environment variables.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "PAYPER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", env, err)
			}
		}
	})
	return envErr
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}
