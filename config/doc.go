// Package config reads the gateway's YAML configuration file.
//
// Loading runs in fixed stages: strict decoding (unknown keys are errors,
// reported with line numbers) over a Config pre-filled with defaults, so a
// key left out keeps its default while an explicit value, even zero, is kept;
// relative file paths resolved against the config file's directory;
// environment overrides (Load only); derived defaults; and validation that
// reports every problem at once, each naming its field, such as
// "routes[2].price: ...".
//
// Environment variables override the file when set to a non-empty value:
//
//	PAYPER_LISTEN        listen
//	PAYPER_UPSTREAM      upstream
//	PAYPER_RPC_URL       rpcURL
//	PAYPER_DATABASE_DSN  database.dsn (used as given, not resolved against
//	                     the config file's directory)
//
// Config is plain data. Only the wiring package and the command line import
// this package; everything else receives the values it needs as options.
package config
