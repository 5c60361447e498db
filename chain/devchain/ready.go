package devchain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"
)

// readyTimeout bounds the readiness probe when ctx has no deadline.
const readyTimeout = 10 * time.Second

// waitReady asks the endpoint for its chain id over plain HTTP, proving that
// the JSON-RPC server is up and serving this chain.
func waitReady(ctx context.Context, url string, chainID *big.Int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()

	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("devchain: readiness request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Close = true // leave no idle connection behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("devchain: rpc not reachable: %w", err)
	}
	defer resp.Body.Close()

	var reply struct {
		Result string `json:"result"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&reply); err != nil {
		return fmt.Errorf("devchain: readiness reply (HTTP %d): %w", resp.StatusCode, err)
	}
	if want := "0x" + chainID.Text(16); reply.Result != want {
		return fmt.Errorf("devchain: rpc reports chain id %q, want %q", reply.Result, want)
	}
	return nil
}
