//! The MP4 writer: converts source frames (BGR24/RGB24 from the compositor, or YUV from
//! another writer) to YUV 4:2:0 at the output size with swscale, encodes them with
//! libx264, encodes planar-float stereo with FFmpeg's AAC encoder (one stream per soundtrack,
//! e.g. one per narrated language), carries any number of mov_text subtitle tracks, and interleaves everything through the MP4 muxer one frame at a
//! time, so memory stays flat however long the video is.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Once;

use ffmpeg::{ChannelLayout, Dictionary, Packet, Rational, codec, encoder, format, frame, software::scaling};
use ffmpeg_next as ffmpeg;

use crate::agent::AgentError;
use crate::domain::X264Preset;
use crate::render::movtext;
use crate::render::subtitles::TimedCue;

/// How the video stream is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSpec {
    /// Encoded width in pixels (even).
    pub width: u32,
    /// Encoded height in pixels (even).
    pub height: u32,
    /// Frames per second; frame `n` is shown at `n / fps` seconds.
    pub fps: u32,
    /// libx264 preset.
    pub preset: X264Preset,
    /// libx264 constant rate factor.
    pub crf: u8,
}

/// How one audio stream is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSpec {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// AAC bitrate in bits per second.
    pub bitrate: u32,
    /// ISO 639-2 language tag of the stream (a narrated soundtrack), `None` for music only.
    pub language: Option<String>,
}

/// The frames a writer is fed: pixel format and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSource {
    /// Pixel format of the frames passed to [`Mp4Writer::push_frame`].
    pub format: format::Pixel,
    /// Their width in pixels.
    pub width: u32,
    /// Their height in pixels.
    pub height: u32,
}

/// Everything the writer puts into one MP4 file.
#[derive(Debug, Clone, PartialEq)]
pub struct Mp4Spec {
    /// The H.264 stream.
    pub video: VideoSpec,
    /// The AAC streams, in order (the first is the default soundtrack); empty for no sound.
    pub audio: Vec<AudioSpec>,
    /// One mov_text stream per entry, tagged with this ISO 639-2 language code.
    pub subtitle_languages: Vec<String>,
}

/// The sample rates the AAC encoder accepts.
pub const AAC_SAMPLE_RATES: [u32; 12] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000];

/// Initialises FFmpeg once per process and keeps libx264's per-file statistics (logged at
/// INFO) off stderr.
pub fn init_ffmpeg() -> Result<(), AgentError> {
    static INIT: Once = Once::new();
    let mut result = Ok(());
    INIT.call_once(|| {
        result = ffmpeg::init().map_err(|e| AgentError::Permanent(format!("FFmpeg failed to initialise: {e}")));
        ffmpeg::log::set_level(ffmpeg::log::Level::Warning);
    });
    result
}

/// An error while writing: resources and IO may recover on retry.
fn transient(what: impl Display) -> impl FnOnce(ffmpeg::Error) -> AgentError {
    move |e| AgentError::Transient(format!("{what}: {e}"))
}

/// An error while setting up: the same settings will fail the same way, unless memory ran out.
fn setup(what: impl Display) -> impl FnOnce(ffmpeg::Error) -> AgentError {
    move |e| match e {
        ffmpeg::Error::Other { errno } if errno == ffmpeg::error::ENOMEM => {
            AgentError::Transient(format!("{what}: {e}"))
        }
        _ => AgentError::Permanent(format!("{what}: {e}")),
    }
}

/// Whether an encoder's `receive_packet` error just means "no packet now".
fn is_drained(e: &ffmpeg::Error) -> bool {
    matches!(e, ffmpeg::Error::Eof) || matches!(e, ffmpeg::Error::Other { errno } if *errno == ffmpeg::error::EAGAIN)
}

struct AudioTrack {
    encoder: encoder::Audio,
    stream: usize,
    time_base: Rational,
    frame: frame::Audio,
    frame_size: usize,
    next_pts: i64,
    finished: bool,
}

/// Writes one MP4 file from RGB frames, audio chunks and subtitle cues.
pub struct Mp4Writer {
    path: PathBuf,
    octx: format::context::Output,
    video: encoder::Video,
    video_stream: usize,
    video_tb: Rational,
    scaler: scaling::Context,
    yuv: frame::Video,
    next_pts: i64,
    audio: Vec<AudioTrack>,
    subtitle_streams: Vec<usize>,
    /// Each stream's time base as the muxer chose it in `write_header`.
    stream_tbs: Vec<Rational>,
    packet: Packet,
}

impl Mp4Writer {
    /// Creates `path` (written as MP4 whatever its extension) for frames that arrive as
    /// `source` and are converted (and scaled, if the sizes differ) to the spec's YUV 4:2:0.
    pub fn create(path: &Path, spec: &Mp4Spec, source: FrameSource) -> Result<Mp4Writer, AgentError> {
        init_ffmpeg()?;
        let shown = path.display().to_string();
        let v = &spec.video;
        if v.width == 0 || v.height == 0 || v.width % 2 == 1 || v.height % 2 == 1 || v.fps == 0 {
            return Err(AgentError::Permanent(format!(
                "{shown}: video must have even, non-zero dimensions and fps (got {}x{} @ {})",
                v.width, v.height, v.fps
            )));
        }
        let mut octx = format::output_as(path, "mp4").map_err(transient(format!("cannot create {shown}")))?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

        // Video: libx264.
        let x264 = encoder::find_by_name("libx264")
            .ok_or_else(|| AgentError::Permanent("this FFmpeg has no libx264 encoder".into()))?;
        let video_stream = octx.add_stream(x264).map_err(setup("cannot add the video stream"))?.index();
        let mut venc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(setup("cannot create the H.264 encoder"))?;
        let video_tb = Rational::new(1, v.fps as i32);
        venc.set_width(v.width);
        venc.set_height(v.height);
        venc.set_format(format::Pixel::YUV420P);
        venc.set_time_base(video_tb);
        venc.set_frame_rate(Some(Rational::new(v.fps as i32, 1)));
        venc.set_colorspace(ffmpeg::color::Space::BT709);
        venc.set_color_primaries(ffmpeg::color::Primaries::BT709);
        venc.set_color_transfer_characteristic(ffmpeg::color::TransferCharacteristic::BT709);
        venc.set_color_range(ffmpeg::color::Range::MPEG);
        if global_header {
            venc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = Dictionary::new();
        opts.set("preset", v.preset.as_str());
        opts.set("crf", &v.crf.to_string());
        // 0 = one x264 thread set per core; FFmpeg's own default for encoders is 1.
        opts.set("threads", "0");
        let video =
            venc.open_with(opts).map_err(setup(format!("libx264 rejected preset '{}' / crf {}", v.preset, v.crf)))?;
        {
            let mut st =
                octx.stream_mut(video_stream).ok_or_else(|| AgentError::Permanent("video stream vanished".into()))?;
            st.set_parameters(&video);
            st.set_time_base(video_tb);
            st.set_avg_frame_rate(Rational::new(v.fps as i32, 1));
        }

        // Audio: FFmpeg's native AAC encoder, planar float stereo; the first stream is the
        // default one, the others are alternates players list by language.
        let mut audio = Vec::with_capacity(spec.audio.len());
        for (n, a) in spec.audio.iter().enumerate() {
            let aac = encoder::find(codec::Id::AAC)
                .ok_or_else(|| AgentError::Permanent("this FFmpeg has no AAC encoder".into()))?;
            let stream = octx.add_stream(aac).map_err(setup("cannot add the audio stream"))?.index();
            let mut aenc = codec::context::Context::new_with_codec(aac)
                .encoder()
                .audio()
                .map_err(setup("cannot create the AAC encoder"))?;
            let time_base = Rational::new(1, a.sample_rate as i32);
            aenc.set_rate(a.sample_rate as i32);
            aenc.set_format(format::Sample::F32(format::sample::Type::Planar));
            aenc.set_channel_layout(ChannelLayout::STEREO);
            aenc.set_channels(2);
            aenc.set_bit_rate(a.bitrate as usize);
            aenc.set_time_base(time_base);
            if global_header {
                aenc.set_flags(codec::Flags::GLOBAL_HEADER);
            }
            let encoder =
                aenc.open_as(aac).map_err(setup(format!("AAC rejected {} Hz / {} b/s", a.sample_rate, a.bitrate)))?;
            let frame_size = (encoder.frame_size() as usize).max(1);
            {
                let mut st =
                    octx.stream_mut(stream).ok_or_else(|| AgentError::Permanent("audio stream vanished".into()))?;
                st.set_parameters(&encoder);
                st.set_time_base(time_base);
                if let Some(lang) = &a.language {
                    let mut meta = Dictionary::new();
                    meta.set("language", lang);
                    st.set_metadata(meta);
                }
                // SAFETY: `st` is a live stream of `octx`; disposition is a plain int field.
                unsafe {
                    (*st.as_mut_ptr()).disposition =
                        if n == 0 { ffmpeg::ffi::AV_DISPOSITION_DEFAULT as i32 } else { 0 };
                }
            }
            let mut frame =
                frame::Audio::new(format::Sample::F32(format::sample::Type::Planar), frame_size, ChannelLayout::STEREO);
            frame.set_channels(2);
            frame.set_rate(a.sample_rate);
            audio.push(AudioTrack { encoder, stream, time_base, frame, frame_size, next_pts: 0, finished: false });
        }

        // Subtitles: mov_text streams whose samples we build ourselves.
        let mut subtitle_streams = Vec::new();
        for lang in &spec.subtitle_languages {
            let index = add_mov_text_stream(&mut octx, lang)?;
            subtitle_streams.push(index);
        }

        let mut header_opts = Dictionary::new();
        // Put the index first so players can start before the whole file has arrived.
        header_opts.set("movflags", "+faststart");
        octx.write_header_with(header_opts).map_err(transient(format!("cannot write the header of {shown}")))?;
        let stream_tbs = octx.streams().map(|s| s.time_base()).collect();

        let mut scaler = scaling::Context::get(
            source.format,
            source.width,
            source.height,
            format::Pixel::YUV420P,
            v.width,
            v.height,
            scaling::Flags::BILINEAR,
        )
        .map_err(setup(format!(
            "cannot convert {:?} {}x{} to the encoder's YUV",
            source.format, source.width, source.height
        )))?;
        if is_rgb(source.format) {
            use_bt709(&mut scaler);
        }
        let yuv = frame::Video::new(format::Pixel::YUV420P, v.width, v.height);

        Ok(Mp4Writer {
            path: path.to_path_buf(),
            octx,
            video,
            video_stream,
            video_tb,
            scaler,
            yuv,
            next_pts: 0,
            audio,
            subtitle_streams,
            stream_tbs,
            packet: Packet::empty(),
        })
    }

    /// Frames encoded so far.
    pub fn frames(&self) -> u64 {
        self.next_pts as u64
    }

    /// Samples (per channel) sent to the first audio encoder so far.
    pub fn audio_samples(&self) -> u64 {
        self.audio.first().map(|a| a.next_pts as u64).unwrap_or(0)
    }

    /// Samples per AAC frame; `write_audio` takes at most this many at once.
    pub fn audio_frame_size(&self) -> Option<usize> {
        self.audio.first().map(|a| a.frame_size)
    }

    /// Converts one source frame to the encoder's YUV, encodes it as the next frame and
    /// writes any packets the encoder releases.
    pub fn push_frame(&mut self, source: &frame::Video) -> Result<(), AgentError> {
        self.scaler.run(source, &mut self.yuv).map_err(transient("conversion to YUV failed"))?;
        self.yuv.set_pts(Some(self.next_pts));
        self.next_pts += 1;
        self.video.send_frame(&self.yuv).map_err(transient("libx264 refused a frame"))?;
        self.drain_video()
    }

    /// The YUV frame most recently encoded, e.g. to feed a smaller writer without converting
    /// from RGB again.
    pub fn last_frame(&self) -> &frame::Video {
        &self.yuv
    }

    /// Encodes the next `left.len()` stereo samples of audio stream `index` (in the order of
    /// `Mp4Spec::audio`; at most one AAC frame; a shorter chunk must be the last one).
    pub fn write_audio(&mut self, index: usize, left: &[f32], right: &[f32]) -> Result<(), AgentError> {
        let Some(track) = self.audio.get_mut(index) else {
            return Err(AgentError::Permanent(format!(
                "{}: audio written to stream {index}, which the file does not have",
                self.path.display()
            )));
        };
        let n = left.len().min(right.len());
        if n == 0 {
            return Ok(());
        }
        if n > track.frame_size || track.finished {
            return Err(AgentError::Permanent(format!(
                "{}: audio chunk of {n} samples after a short chunk or over the {} sample frame",
                self.path.display(),
                track.frame_size
            )));
        }
        if n < track.frame_size {
            track.finished = true;
        }
        track.frame.set_samples(n);
        track.frame.plane_mut::<f32>(0)[..n].copy_from_slice(&left[..n]);
        track.frame.plane_mut::<f32>(1)[..n].copy_from_slice(&right[..n]);
        track.frame.set_pts(Some(track.next_pts));
        track.next_pts += n as i64;
        track.encoder.send_frame(&track.frame).map_err(transient("the AAC encoder refused a frame"))?;
        self.drain_audio(index)
    }

    /// Writes one cue to subtitle track `track` (in the order of `Mp4Spec::subtitle_languages`).
    /// Cues of a track must come in time order and must not overlap.
    pub fn write_cue(&mut self, track: usize, cue: &TimedCue) -> Result<(), AgentError> {
        let stream = *self
            .subtitle_streams
            .get(track)
            .ok_or_else(|| AgentError::Permanent(format!("no subtitle track {track}")))?;
        let mut packet = Packet::copy(&movtext::sample(&cue.text));
        packet.set_stream(stream);
        packet.set_pts(Some(cue.start_ms));
        packet.set_dts(Some(cue.start_ms));
        packet.set_duration(cue.end_ms - cue.start_ms);
        packet.set_flags(ffmpeg::packet::Flags::KEY);
        packet.rescale_ts(Rational::new(1, 1000), self.stream_tbs[stream]);
        packet
            .write_interleaved(&mut self.octx)
            .map_err(transient(format!("cannot write a subtitle to {}", self.path.display())))
    }

    /// Flushes both encoders and writes the MP4 index; the file is complete afterwards.
    pub fn finish(mut self) -> Result<u64, AgentError> {
        self.video.send_eof().map_err(transient("cannot flush libx264"))?;
        self.drain_video()?;
        for index in 0..self.audio.len() {
            self.audio[index].encoder.send_eof().map_err(transient("cannot flush the AAC encoder"))?;
            self.drain_audio(index)?;
        }
        self.octx.write_trailer().map_err(transient(format!("cannot finish {}", self.path.display())))?;
        Ok(self.next_pts as u64)
    }

    fn drain_video(&mut self) -> Result<(), AgentError> {
        loop {
            match self.video.receive_packet(&mut self.packet) {
                Ok(()) => {
                    self.packet.set_stream(self.video_stream);
                    self.packet.rescale_ts(self.video_tb, self.stream_tbs[self.video_stream]);
                    self.packet
                        .write_interleaved(&mut self.octx)
                        .map_err(transient(format!("cannot write video to {}", self.path.display())))?;
                }
                Err(e) if is_drained(&e) => return Ok(()),
                Err(e) => return Err(transient("libx264 failed")(e)),
            }
        }
    }

    fn drain_audio(&mut self, index: usize) -> Result<(), AgentError> {
        let Some(track) = self.audio.get_mut(index) else { return Ok(()) };
        loop {
            match track.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    self.packet.set_stream(track.stream);
                    self.packet.rescale_ts(track.time_base, self.stream_tbs[track.stream]);
                    self.packet
                        .write_interleaved(&mut self.octx)
                        .map_err(transient(format!("cannot write audio to {}", self.path.display())))?;
                }
                Err(e) if is_drained(&e) => return Ok(()),
                Err(e) => return Err(transient("the AAC encoder failed")(e)),
            }
        }
    }
}

/// Adds a mov_text stream tagged `lang` and gives it the tx3g sample description.
fn add_mov_text_stream(octx: &mut format::context::Output, lang: &str) -> Result<usize, AgentError> {
    let mut st = octx.add_stream(codec::Id::MOV_TEXT).map_err(setup("cannot add a subtitle stream"))?;
    let description = movtext::sample_description();
    // SAFETY: `st` is a live stream of `octx`; codecpar is allocated by avformat_new_stream.
    // The extradata buffer comes from av_mallocz with the padding FFmpeg requires, and
    // ownership passes to codecpar, which frees it with the format context.
    unsafe {
        let par = (*st.as_mut_ptr()).codecpar;
        (*par).codec_type = ffmpeg::ffi::AVMediaType::AVMEDIA_TYPE_SUBTITLE;
        (*par).codec_id = ffmpeg::ffi::AVCodecID::AV_CODEC_ID_MOV_TEXT;
        let size = description.len();
        let buf = ffmpeg::ffi::av_mallocz(size + ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
        if buf.is_null() {
            return Err(AgentError::Transient("out of memory for subtitle extradata".into()));
        }
        std::ptr::copy_nonoverlapping(description.as_ptr(), buf, size);
        (*par).extradata = buf;
        (*par).extradata_size = size as i32;
    }
    st.set_time_base(Rational::new(1, 1000));
    let mut meta = Dictionary::new();
    meta.set("language", lang);
    st.set_metadata(meta);
    Ok(st.index())
}

/// Whether `format` is one of the packed RGB orders the compositor writes.
fn is_rgb(format: format::Pixel) -> bool {
    matches!(format, format::Pixel::RGB24 | format::Pixel::BGR24)
}

/// Makes swscale convert with BT.709 coefficients into limited range, matching the tags set
/// on the H.264 stream.
fn use_bt709(scaler: &mut scaling::Context) {
    // SAFETY: the context is valid for the call; sws_getCoefficients returns a pointer to a
    // static table. A failure leaves the default (BT.601) matrix, which is still a valid video.
    unsafe {
        let coefficients = ffmpeg::ffi::sws_getCoefficients(ffmpeg::ffi::SWS_CS_ITU709);
        ffmpeg::ffi::sws_setColorspaceDetails(
            scaler.as_mut_ptr(),
            coefficients,
            1,
            coefficients,
            0,
            0,
            1 << 16,
            1 << 16,
        );
    }
}
