//! The language-specific word lists of brief analysis. Everything else in the script module
//! (numbers, quoted strings, names, list structure, injection markers) works on any script;
//! these lists are what make direction words recognisable, and they cover English first and
//! the common direction words of French, Spanish, German and Japanese.

/// Nouns naming the medium itself ("teaser", "film"): a phrase built on one describes the
/// video, not what it shows.
pub const MEDIUM_NOUNS: &[&str] = &[
    // en
    "teaser",
    "film",
    "video",
    "ad",
    "advert",
    "advertisement",
    "commercial",
    "spot",
    "trailer",
    "clip",
    "promo",
    "reel",
    "explainer",
    "demo",
    "recap",
    "poem",
    "animation",
    "montage",
    "storyboard",
    "vid",
    "videos",
    "films",
    "ads",
    // fr
    "vidéo",
    "publicité",
    "pub",
    "bande-annonce",
    "séquence",
    // es
    "vídeo",
    "anuncio",
    "cortometraje",
    "spot",
    // de
    "werbespot",
    "werbefilm",
    "imagefilm",
    "erklärvideo",
    "kurzvideo",
    "filmchen",
];

/// Japanese medium nouns (no word spaces: matched as substrings).
pub const MEDIUM_JA: &[&str] = &["動画", "ビデオ", "映像", "広告", "予告編", "ティーザー", "CM", "ムービー"];

/// Words about how the video should feel (tone and pace).
pub const TONE_WORDS: &[&str] = &[
    // en
    "calm",
    "energetic",
    "friendly",
    "clear",
    "educational",
    "dramatic",
    "hopeful",
    "quiet",
    "warm",
    "bold",
    "playful",
    "fun",
    "serious",
    "cheerful",
    "melancholic",
    "upbeat",
    "uplifting",
    "gentle",
    "soft",
    "modern",
    "clean",
    "simple",
    "minimal",
    "minimalist",
    "cinematic",
    "emotional",
    "inspiring",
    "professional",
    "punchy",
    "lively",
    "relaxed",
    "elegant",
    "premium",
    "sober",
    "informative",
    "reassuring",
    "urgent",
    "exciting",
    "joyful",
    "festive",
    "tense",
    "mysterious",
    "nostalgic",
    "slow",
    "fast",
    "short",
    "brief",
    "concise",
    "light-hearted",
    "lighthearted",
    "witty",
    "humorous",
    "dynamic",
    "warm-hearted",
    "heartfelt",
    "bright",
    // fr
    "calme",
    "chaleureux",
    "chaleureuse",
    "dynamique",
    "énergique",
    "joyeux",
    "joyeuse",
    "doux",
    "douce",
    "sobre",
    "élégant",
    "élégante",
    "clair",
    "claire",
    "pédagogique",
    "amical",
    "amicale",
    "court",
    "courte",
    "festif",
    "festive",
    "rassurant",
    "rassurante",
    "serein",
    "sereine",
    // es
    "tranquilo",
    "tranquila",
    "cálido",
    "cálida",
    "enérgico",
    "enérgica",
    "alegre",
    "claro",
    "clara",
    "educativo",
    "educativa",
    "amable",
    "breve",
    "corto",
    "corta",
    "dinámico",
    "dinámica",
    "sereno",
    "serena",
    "divertido",
    "divertida",
    "cercano",
    "cercana",
    // de
    "ruhig",
    "fröhlicher",
    "fröhliche",
    "freundlicher",
    "sachlicher",
    "ruhiger",
    "ruhiges",
    "warm",
    "warmer",
    "warmes",
    "energisch",
    "fröhlich",
    "fröhliches",
    "freundlich",
    "freundliches",
    "klar",
    "klares",
    "lehrreich",
    "kurz",
    "kurzes",
    "kurzer",
    "sachlich",
    "locker",
    "lockeres",
    "dynamisches",
    "dynamischer",
    "seriös",
    "seriöses",
];

/// Japanese tone words (matched as substrings).
pub const TONE_JA: &[&str] = &[
    "落ち着いた",
    "明るい",
    "穏やかな",
    "温かい",
    "楽しい",
    "優しい",
    "短い",
    "やさしい",
    "元気な",
    "静かな",
    "爽やかな",
];

/// Nouns of look-and-feel directions ("slow camera moves", "cold blue palette").
pub const STYLE_NOUNS: &[&str] = &[
    // en
    "tone",
    "style",
    "palette",
    "colours",
    "colors",
    "colour",
    "color",
    "camera",
    "moves",
    "movement",
    "music",
    "pauses",
    "pace",
    "pacing",
    "look",
    "feel",
    "mood",
    "vibe",
    "font",
    "fonts",
    "typography",
    "captions",
    "subtitles",
    "voice",
    "voiceover",
    "voice-over",
    "soundtrack",
    "transitions",
    "cuts",
    "shots",
    "visuals",
    "aesthetic",
    "lighting",
    "feeling",
    // fr
    "ton",
    "ambiance",
    "couleurs",
    "musique",
    "rythme",
    // es
    "tono",
    "estilo",
    "colores",
    "música",
    "ritmo",
    // de
    "ton",
    "stil",
    "farben",
    "musik",
    "tempo",
    "stimmung",
];

/// Colour words (a clause of colours only is a palette direction).
pub const COLOUR_WORDS: &[&str] = &[
    "white",
    "black",
    "teal",
    "blue",
    "red",
    "orange",
    "yellow",
    "green",
    "purple",
    "pink",
    "gold",
    "grey",
    "gray",
    "navy",
    "turquoise",
    "brown",
    "pastel",
    "neon",
    "blanc",
    "noir",
    "bleu",
    "rouge",
    "vert",
    "blanco",
    "negro",
    "azul",
    "rojo",
    "verde",
    "weiß",
    "schwarz",
    "blau",
    "rot",
    "grün",
];

/// Words that join direction words without adding meaning ("dramatic but hopeful").
pub const DIRECTION_GLUE: &[&str] = &[
    "a",
    "an",
    "and",
    "but",
    "with",
    "very",
    "quite",
    "yet",
    "still",
    "the",
    "in",
    "of",
    "colour",
    "palette",
    "et",
    "mais",
    "un",
    "une",
    "y",
    "pero",
    "und",
    "aber",
    "ein",
    "eine",
    "cold",
    "long",
    "tones",
    "overall",
    "keep",
    "it",
    "throughout",
    "de",
    "del",
    "la",
    "le",
];

/// Verbs that open a direction sentence addressed to us ("Explain how…", "Make a video…").
/// The object that follows is content.
pub const MAKE_VERBS: &[&str] = &[
    // en
    "explain",
    "announce",
    "introduce",
    "present",
    "promote",
    "describe",
    "make",
    "create",
    "produce",
    "generate",
    "write",
    "tell",
    "showcase",
    "celebrate",
    "advertise",
    "invite",
    "remind",
    "warn",
    "recap",
    // fr
    "expliquez",
    "explique",
    "annoncez",
    "annonce",
    "présentez",
    "présente",
    "faites",
    "fais",
    "créez",
    "crée",
    // es
    "explica",
    "explique",
    "anuncia",
    "anuncie",
    "presenta",
    "presente",
    "haz",
    "crea",
    "cree",
    // de
    "erkläre",
    "erklären",
    "kündige",
    "stelle",
    "zeige",
    "mache",
    "erstelle",
    "erstellen",
];

/// Verbs of emphasis asks ("show the price", "highlight the discount").
pub const EMPHASIS_VERBS: &[&str] =
    &["show", "feature", "highlight", "mention", "include", "emphasise", "emphasize", "stress", "display", "zeige"];

/// Position asks: the text after them belongs at the start or the end of the video.
pub const OPEN_ASKS: &[&str] = &["open on", "open with", "start with", "start on", "begin with", "begin on"];

/// End asks.
pub const END_ASKS: &[&str] = &[
    "end with",
    "end on",
    "close with",
    "close on",
    "finish with",
    "finish on",
    "sign off with",
    "terminez par",
    "termine par",
    "finissez par",
    "finir par",
    "termina con",
    "terminar con",
    "acaba con",
    "endet mit",
    "ende mit",
    "abschließend",
];

/// Prepositions that join a medium phrase to its subject ("a teaser for a bakery").
pub const SUBJECT_LINKS: &[&str] = &[
    "for",
    "about",
    "of",
    "on",
    "announcing",
    "showing",
    "introducing",
    "presenting",
    "promoting",
    "celebrating",
    "featuring",
    "explaining",
    "pour",
    "sur",
    "annonçant",
    "présentant",
    "para",
    "sobre",
    "anunciando",
    "presentando",
    "für",
    "über",
    "zum",
    "zur",
];

/// Words that only sequence a list ("then the team training").
pub const SEQUENCE_WORDS: &[&str] =
    &["then", "finally", "and", "afterwards", "later", "puis", "ensuite", "enfin", "luego", "después", "dann"];

/// Scene words, for scene-count phrases ("in four scenes", "en trois scènes").
pub const SCENE_WORDS: &[&str] =
    &["scene", "scenes", "shots", "shot", "parts", "scènes", "scène", "escenas", "escena", "szenen", "szene", "teilen"];

/// Duration words ("15-second", "30 seconds", "30 secondes", "20 Sekunden").
pub const SECOND_WORDS: &[&str] = &[
    "second",
    "seconds",
    "sec",
    "secs",
    "s",
    "minute",
    "minutes",
    "min",
    "seconde",
    "secondes",
    "segundo",
    "segundos",
    "sekunden",
    "sekunde",
    "sekündiges",
    "sekündiger",
    "sekündigen",
];

/// Small number words by language (index + 1 is the value).
pub const NUMBER_WORDS: &[&[&str]] = &[
    &["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"],
    &["un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze"],
    &["uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce"],
    &["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf"],
];

/// English number words a script may say; one not in the brief is an invented number.
pub const EN_NUMBER_WORDS: &[&str] = &[
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty", "thirty",
    "forty", "fifty", "hundred", "thousand", "million", "billion", "half", "third", "quarter",
];

/// Function words ignored when comparing content words.
pub const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "by", "from", "into", "its",
    "it", "is", "are", "be", "our", "your", "their", "this", "that", "these", "those", "all", "as", "than", "then",
    "up", "out", "over", "we", "you", "they", "he", "she", "his", "her", "my", "us", "who", "which", "what", "how",
    "when", "where", "why", "not", "no", "so", "very", "more", "most", "just", "only", "also", "can", "will", "now",
    "it's", "let's", "le", "la", "les", "un", "une", "des", "du", "de", "et", "en", "au", "aux", "pour", "avec", "sur",
    "dans", "par", "est", "el", "los", "las", "del", "y", "con", "para", "por", "es", "der", "die", "das", "den",
    "dem", "des", "ein", "eine", "einen", "und", "mit", "für", "von", "zu", "im", "ist", "am", "auf",
];

/// Words that are capitalised for grammar, not because they name something (sentence
/// openers, pronouns, days are still facts through the brief they come from).
pub const CAPITALISED_COMMON: &[&str] = &["i", "i'm", "i'll", "ok", "okay"];

/// The word that joins the last two items of a list, by language.
pub fn conjunction(lang: &str) -> &'static str {
    match lang {
        "fr" => "et",
        "es" => "y",
        "de" => "und",
        "it" => "e",
        "pt" => "e",
        "nl" => "en",
        _ => "and",
    }
}

/// Articles a caption may drop ("the outdoor unit" → "Outdoor unit").
pub const ARTICLES: &[&str] =
    &["a", "an", "the", "le", "la", "les", "un", "une", "el", "los", "las", "una", "der", "die", "das", "ein", "eine"];

/// Whether `w` (lowercase) is in `list`.
pub fn has(list: &[&str], w: &str) -> bool {
    list.contains(&w)
}
