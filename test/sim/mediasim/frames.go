package mediasim

// The frames Twilio sends, with fields in Twilio's order.

type connectedFrame struct {
	Event    string `json:"event"`
	Protocol string `json:"protocol"`
	Version  string `json:"version"`
}

type startFrame struct {
	Event          string `json:"event"`
	SequenceNumber string `json:"sequenceNumber"`
	Start          struct {
		AccountSid       string            `json:"accountSid"`
		StreamSid        string            `json:"streamSid"`
		CallSid          string            `json:"callSid"`
		Tracks           []string          `json:"tracks"`
		CustomParameters map[string]string `json:"customParameters"`
		MediaFormat      struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sampleRate"`
			Channels   int    `json:"channels"`
		} `json:"mediaFormat"`
	} `json:"start"`
	StreamSid string `json:"streamSid"`
}

type dtmfFrame struct {
	Event          string `json:"event"`
	StreamSid      string `json:"streamSid"`
	SequenceNumber string `json:"sequenceNumber"`
	DTMF           struct {
		Track string `json:"track"`
		Digit string `json:"digit"`
	} `json:"dtmf"`
}

type stopFrame struct {
	Event          string `json:"event"`
	SequenceNumber string `json:"sequenceNumber"`
	Stop           struct {
		AccountSid string `json:"accountSid"`
		CallSid    string `json:"callSid"`
	} `json:"stop"`
	StreamSid string `json:"streamSid"`
}

// outboundFrame is what the gateway sends: media, mark or clear.
type outboundFrame struct {
	Event     string `json:"event"`
	StreamSid string `json:"streamSid"`
	Media     struct {
		Payload string `json:"payload"`
	} `json:"media"`
	Mark struct {
		Name string `json:"name"`
	} `json:"mark"`
}
