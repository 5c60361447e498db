package interop_test

// difference is a case on which Payper and the reference disagree on purpose: the two verdicts
// the test must see, and why the disagreement is deliberate and safe.
type difference struct {
	payper, reference string
	why               string
}

// Why Payper refuses what the reference accepts. These are the only such cases; each refuses
// input no stock client writes, and refusing moves no money.
const (
	canonicalNumbers = "Payper reads value, validAfter and validBefore as canonical decimal strings only " +
		"(x402.ParseAmount: digits, no leading zero); the reference reads them with BigInt, which also takes " +
		"a JSON number, leading zeros, hex, a sign and spaces. Stock clients write none of those, and one " +
		"spelling per amount means two parties never read the same string differently."
	exactKeys = "Payper refuses a JSON object whose keys repeat or differ only in letter case (x402's strict " +
		"JSON); the reference's JSON.parse keeps the last of two equal keys. A payload must not show one value " +
		"to verification and another to whatever reads it next."
	raisedMargin = "An operator who raises settlement.inclusionMargin above 6 s raises the validity margin " +
		"asked at verification with it (internal/app), so that a payment that could not be sent in time is " +
		"refused before the upstream is called, not after."
)

// Why Payper accepts what the reference refuses. Each is safe: the payment is verified against
// Payper's own requirement and settles as verified.
const (
	ownRequirement = "Payper matches the payer's copy of the offer by scheme, network, amount, asset and payTo " +
		"(addresses in any letter case) and verifies the payment against its own requirement, never the copy; " +
		"the reference also wants the copy's other members (maxTimeoutSeconds, extra, unknown ones) equal and " +
		"addresses spelt alike. Nothing the payer echoes is used."
	vParity = "Payper takes a signature's v as a parity bit (0/1) as well as 27/28, and sends 27/28 to the " +
		"token; the reference passes 0/1 on and its simulation reverts. The test settles such a payment on chain."
	noSimulation = "Payper does not simulate the transfer at verification. A seller whose configured EIP-712 " +
		"name or version is not the token's gets signatures the token refuses: every such payment fails at " +
		"settlement, before the response is released, and nothing is charged. The reference refuses at " +
		"verification. A seller misconfiguration; the gateway warns at start when the token's name() differs."
	noCode = "The gateway refuses to start when the asset has no code, so no payment meets this; asked " +
		"anyway, the verifier cannot read a balance and answers 503 (fails closed)."
)

// Why both refuse with different reasons.
const (
	envelopeStatus = "Both refuse. A header Payper cannot decode as a v2 payment (bad JSON, x402Version not 2, " +
		"no accepted or payload member) is answered 400, as x402's conformance checks ask; the reference's " +
		"HTTP server treats it as no payment, or its SDK throws."
	namedMember = "Both refuse. Payper names the member that does not parse (invalid_exact_evm_payload, " +
		"invalid_exact_evm_payload_missing_signature, the Go reference's reasons); the TypeScript reference " +
		"feeds it to the signature check, which fails, or throws."
	permit2 = "Both refuse. Payper's offer is EIP-3009 (its extra names no assetTransferMethod, so stock " +
		"clients never send Permit2); the reference tries Permit2 on any payload shaped like one."
	undeployedWallet = "Both refuse: Payper deploys no wallet, and the reference only through a factory its " +
		"operator allowed (none by default); Payper says invalid_exact_evm_signature."
)

const (
	accept           = "accept"
	refNoMatch       = "reject:no_matching_payment_requirements"
	refSignature     = "reject:invalid_exact_evm_signature"
	refError         = "error"
	payperMalformed  = "malformed:invalid_payload"
	payperVersion    = "malformed:invalid_x402_version"
	payperPayload    = "reject:invalid_exact_evm_payload"
	payperNoSig      = "reject:invalid_exact_evm_payload_missing_signature"
	payperValidUntil = "reject:invalid_exact_evm_payload_authorization_valid_before"
)

// knownDifferences are every case on which Payper and the reference disagree.
var knownDifferences = map[string]difference{
	"value/leading-zero":      {payperPayload, accept, canonicalNumbers},
	"value/json-number":       {payperPayload, accept, canonicalNumbers},
	"value/hex":               {payperPayload, accept, canonicalNumbers},
	"value/spaces":            {payperPayload, accept, canonicalNumbers},
	"value/plus-sign":         {payperPayload, accept, canonicalNumbers},
	"validAfter/leading-zero": {payperPayload, accept, canonicalNumbers},
	"validAfter/json-number":  {payperPayload, accept, canonicalNumbers},
	"validBefore/hex":         {payperPayload, accept, canonicalNumbers},

	"value/case-twin":               {payperMalformed, accept, exactKeys},
	"value/repeated":                {payperMalformed, accept, exactKeys},
	"envelope/x402Version-repeated": {payperMalformed, accept, exactKeys},

	"config/inclusion-margin-10s": {payperValidUntil, accept, raisedMargin},

	"accepted/asset-lowercase":            {accept, refNoMatch, ownRequirement},
	"accepted/payTo-lowercase":            {accept, refNoMatch, ownRequirement},
	"accepted/maxTimeoutSeconds-other":    {accept, refNoMatch, ownRequirement},
	"accepted/extra-absent":               {accept, refNoMatch, ownRequirement},
	"accepted/extra-name-other":           {accept, refNoMatch, ownRequirement},
	"accepted/unknown-member":             {accept, refNoMatch, ownRequirement},
	"signature/v-parity":                  {accept, "reject:invalid_exact_evm_transaction_simulation_failed", vParity},
	"offer/extra-name-not-the-token's":    {accept, "reject:invalid_exact_evm_token_name_mismatch", noSimulation},
	"offer/extra-version-not-the-token's": {accept, "reject:invalid_exact_evm_transaction_simulation_failed", noSimulation},
	"offer/asset-without-code":            {"status:503", "reject:asset_not_deployed_contract", noCode},

	"accepted/absent":                {payperMalformed, refNoMatch, envelopeStatus},
	"envelope/key-case":              {payperMalformed, refNoMatch, envelopeStatus},
	"envelope/not-json":              {payperMalformed, "malformed", envelopeStatus},
	"envelope/x402Version-1":         {payperVersion, refError, envelopeStatus},
	"envelope/x402Version-3":         {payperVersion, refError, envelopeStatus},
	"envelope/x402Version-absent":    {payperVersion, refError, envelopeStatus},
	"envelope/x402Version-string":    {payperMalformed, refError, envelopeStatus},
	"envelope/payload-absent":        {payperMalformed, refError, envelopeStatus},
	"envelope/payload-string":        {payperPayload, refError, namedMember},
	"envelope/authorization-absent":  {payperPayload, refError, namedMember},
	"from/malformed":                 {payperPayload, refSignature, namedMember},
	"to/malformed":                   {payperPayload, refSignature, namedMember},
	"value/negative":                 {payperPayload, refSignature, namedMember},
	"value/exponent":                 {payperPayload, refError, namedMember},
	"value/fraction":                 {payperPayload, refError, namedMember},
	"value/empty":                    {payperPayload, refSignature, namedMember},
	"value/above-uint256":            {payperPayload, refSignature, namedMember},
	"value/absent":                   {payperPayload, refError, namedMember},
	"value/key-case":                 {payperPayload, refError, namedMember},
	"nonce/31-bytes":                 {payperPayload, refSignature, namedMember},
	"nonce/33-bytes":                 {payperPayload, refSignature, namedMember},
	"nonce/no-prefix":                {payperPayload, refSignature, namedMember},
	"nonce/absent":                   {payperPayload, refSignature, namedMember},
	"signature/empty":                {payperNoSig, refSignature, namedMember},
	"signature/absent":               {payperNoSig, refError, namedMember},
	"signature/no-prefix":            {payperPayload, refSignature, namedMember},
	"signature/not-hex":              {payperPayload, refSignature, namedMember},
	"envelope/permit2-payload":       {payperPayload, "reject:invalid_permit2_signature", permit2},
	"from/undeployed-wallet-erc6492": {refSignature, "reject:eip6492_factory_not_allowed", undeployedWallet},
}
