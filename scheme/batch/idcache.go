package batch

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// DefaultIDCacheSize is how many channel ids a Verifier keeps per generation.
const DefaultIDCacheSize = 4096

// idCache remembers ChannelConfig → channelId so a channel's config is hashed once, not on
// every voucher. It holds two generations of at most size entries each: when the current one
// fills up it becomes the old one and the previous old one is dropped. Memory stays bounded
// against a flood of made-up configs, and a channel in use survives by being promoted.
type idCache struct {
	mu       sync.Mutex
	size     int
	cur, old map[ChannelConfig]common.Hash
}

func newIDCache(size int) *idCache {
	if size <= 0 {
		size = DefaultIDCacheSize
	}
	return &idCache{size: size, cur: make(map[ChannelConfig]common.Hash, size)}
}

func (c *idCache) lookup(cfg ChannelConfig, compute func(ChannelConfig) common.Hash) common.Hash {
	c.mu.Lock()
	if id, ok := c.cur[cfg]; ok {
		c.mu.Unlock()
		return id
	}
	id, ok := c.old[cfg]
	c.mu.Unlock()
	if !ok {
		id = compute(cfg)
	}
	c.mu.Lock()
	if len(c.cur) >= c.size {
		c.old, c.cur = c.cur, make(map[ChannelConfig]common.Hash, c.size)
	}
	c.cur[cfg] = id
	c.mu.Unlock()
	return id
}

func (c *idCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
