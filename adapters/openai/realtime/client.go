package realtime

import (
	"encoding/json"

	"github.com/openai/openai-go/v3/packages/param"
	oai "github.com/openai/openai-go/v3/realtime"
	"github.com/openai/openai-go/v3/responses"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/ports"
)

// appendAudio appends an input_audio_buffer.append event carrying the
// base64 audio as it is. It is the audio hot path: no encoding/json.
func appendAudio(b, audio []byte) []byte {
	b = append(b, `{"type":"input_audio_buffer.append","audio":`...)
	b = jsonscan.AppendString(b, audio)
	return append(b, '}')
}

// sessionUpdate is the session.update that configures a call: mu-law in
// and out, audio responses only, the adapter's voice, turn detection and
// transcription, and the call's instructions, tools and MCP servers (see
// tools). Its error wraps ports.ErrRejected: a tool the API would refuse.
func sessionUpdate(cfg ports.SpeechConfig, o Options) (oai.SessionUpdateEventParam, error) {
	pcmu := oai.RealtimeAudioFormatsUnionParam{OfAudioPCMU: &oai.RealtimeAudioFormatsAudioPCMUParam{Type: "audio/pcmu"}}
	in := oai.RealtimeAudioConfigInputParam{Format: pcmu}
	if o.TurnDetection == TurnSemanticVAD {
		in.TurnDetection.OfSemanticVad = &oai.RealtimeAudioInputTurnDetectionSemanticVadParam{}
	} else {
		in.TurnDetection.OfServerVad = &oai.RealtimeAudioInputTurnDetectionServerVadParam{}
	}
	if o.TranscriptionModel != "" {
		in.Transcription.Model = oai.AudioTranscriptionModel(o.TranscriptionModel)
	}
	out := oai.RealtimeAudioConfigOutputParam{Format: pcmu}
	if o.Voice != "" {
		out.Voice.OfString = param.NewOpt(o.Voice)
	}
	session := &oai.RealtimeSessionCreateRequestParam{
		OutputModalities: []string{"audio"},
		Audio:            oai.RealtimeAudioConfigParam{Input: in, Output: out},
	}
	if cfg.Instructions != "" {
		session.Instructions = param.NewOpt(cfg.Instructions)
	}
	t, err := tools(cfg.Tools, cfg.MCP)
	if err != nil {
		return oai.SessionUpdateEventParam{}, err
	}
	if len(t) > 0 {
		session.Tools = t
		session.ToolChoice.OfToolChoiceMode = param.NewOpt(responses.ToolChoiceOptionsAuto)
	}
	return oai.SessionUpdateEventParam{Session: oai.SessionUpdateEventSessionUnionParam{OfRealtime: session}}, nil
}

// responseCreate is a response.create named eventID (the API names it in
// an error it causes), with instructions for this response only when not
// empty.
func responseCreate(eventID, instructions string) oai.ResponseCreateEventParam {
	var e oai.ResponseCreateEventParam
	if eventID != "" {
		e.EventID = param.NewOpt(eventID)
	}
	if instructions != "" {
		e.Response.Instructions = param.NewOpt(instructions)
	}
	return e
}

// truncate is a conversation.item.truncate of an assistant item's audio.
func truncate(itemID string, audioEndMs int) oai.ConversationItemTruncateEventParam {
	return oai.ConversationItemTruncateEventParam{ItemID: itemID, ContentIndex: 0, AudioEndMs: int64(audioEndMs)}
}

// appendJSON appends the JSON encoding of a client event.
func appendJSON(b []byte, v json.Marshaler) ([]byte, error) {
	j, err := v.MarshalJSON()
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}
