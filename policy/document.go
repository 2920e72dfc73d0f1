package policy

// The raw document, as decoded from YAML. Field names are the YAML keys; strictness (unknown fields,
// duplicate keys, anchors) is enforced by checkNode before decoding.

type rawDocument struct {
	Version   uint64               `yaml:"version"`
	Owner     string               `yaml:"owner"`
	Groups    map[string][]string  `yaml:"groups"`
	Rules     string               `yaml:"rules"`
	Language  string               `yaml:"language"`
	Lifecycle *rawLifecycle        `yaml:"lifecycle"`
	Input     []rawInputRule       `yaml:"input"`
	Output    *rawOutput           `yaml:"output"`
	Derive    map[string]rawDerive `yaml:"derive"`
	TEE       *rawTEE              `yaml:"tee"`
}

type rawLifecycle struct {
	NotBefore       string            `yaml:"not_before"`
	Expires         string            `yaml:"expires"`
	MaxUses         map[string]uint64 `yaml:"max_uses"`
	MaxUsesPerParty map[string]uint64 `yaml:"max_uses_per_party"`
	Retention       string            `yaml:"retention"`
}

type rawInputRule struct {
	Purposes []string `yaml:"purposes"`
	Programs []string `yaml:"programs"`
	Keep     []string `yaml:"keep"`
	Drop     []string `yaml:"drop"`
	Rows     []string `yaml:"rows"`
}

type rawOutput struct {
	Kinds          []string `yaml:"kinds"`
	MaxBytes       *int64   `yaml:"max_bytes"`
	MinAggregation *int64   `yaml:"min_aggregation"`
	Recipients     []string `yaml:"recipients"`
}

type rawDerive struct {
	Rules     *string        `yaml:"rules"`
	Lifecycle *rawLifecycle  `yaml:"lifecycle"`
	Input     []rawInputRule `yaml:"input"`
	Output    *rawOutput     `yaml:"output"`
}

type rawTEE struct {
	Types          []string `yaml:"types"`
	AllowSimulated bool     `yaml:"allow_simulated"`
	AllowDebug     bool     `yaml:"allow_debug"`
	Measurements   []string `yaml:"measurements"`
	MinTCB         uint64   `yaml:"min_tcb"`
}
