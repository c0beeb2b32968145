package live

import (
	oai "github.com/openai/openai-go/v3/live"
	"github.com/openai/openai-go/v3/packages/param"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/ports"
)

// appendAudio appends a session.input_audio.append event carrying the
// base64 audio as it is. It is the audio hot path: no encoding/json.
func appendAudio(b, audio []byte) []byte {
	b = append(b, `{"type":"session.input_audio.append","audio":`...)
	b = jsonscan.AppendString(b, audio)
	return append(b, '}')
}

// sessionStart is the session.start that configures a call: the model,
// the call's instructions, 8 kHz mu-law in and out, the voice, and
// Responses delegation to the backend model with the call's tools as its
// function tools. It fails on MCP servers (errMCP) and on a tool whose
// parameters are not a JSON object.
func sessionStart(o Options, cfg ports.SpeechConfig) (oai.ClientEventUnionParam, error) {
	if len(cfg.MCP) > 0 {
		return oai.ClientEventUnionParam{}, errMCP
	}
	tools, err := delegationTools(cfg.Tools)
	if err != nil {
		return oai.ClientEventUnionParam{}, err
	}
	s := oai.SessionConfigParam{
		Model: o.Model,
		Audio: oai.SessionConfigAudioParam{Format: oai.AudioFormatParamOfAudioPCMU(8000)},
		Delegation: oai.SessionConfigDelegationUnionParam{OfResponses: &oai.SessionConfigDelegationResponsesParam{
			Responses: oai.ResponsesDelegationConfigParam{Model: o.BackendModel, Tools: tools},
		}},
	}
	if cfg.Instructions != "" {
		s.Instructions = param.NewOpt(cfg.Instructions)
	}
	if o.Voice != "" {
		s.Audio.Output.Voice.OfString = param.NewOpt(o.Voice)
	}
	return oai.ClientEventParamOfSessionStart(s), nil
}

// speakNow is the commentary that makes the model speak without waiting
// for the caller: GPT-Live has no request for a response of its own.
const speakNow = "Speak to the caller now, without waiting for them to speak first."

// commentary is the session.commentary.append of Respond: speakNow, then
// the instructions for this answer. Its delegation_id is required but
// nullable, and null (general session context) is the only value
// Responses delegation accepts: the SDK omits a zero Opt, so it is set to
// null explicitly.
func commentary(instructions string) oai.ClientEventUnionParam {
	content := speakNow
	if instructions != "" {
		content += "\n\n" + instructions
	}
	return oai.ClientEventUnionParam{OfSessionCommentaryAppend: &oai.CommentaryAppendEventParam{
		Content:      content,
		DelegationID: param.Null[string](),
	}}
}

// sessionClose is the session.close that asks the session to finish; the
// server answers session.closed with the final usage.
func sessionClose() oai.ClientEventUnionParam {
	return oai.ClientEventUnionParam{OfSessionClose: &oai.SessionCloseEventParam{}}
}

// appendEvent appends the JSON encoding of a client event.
func appendEvent(b []byte, e oai.ClientEventUnionParam) ([]byte, error) {
	j, err := e.MarshalJSON()
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}
