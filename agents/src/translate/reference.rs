//! A small reference set for judging caption translation: caption-like English sentences
//! with French, Spanish and German reference translations, written for this project.

/// `(English, French, Spanish, German)`.
pub const SENTENCES: [(&str, &str, &str, &str); 32] = [
    (
        "Fresh bread every morning.",
        "Du pain frais chaque matin.",
        "Pan fresco cada mañana.",
        "Jeden Morgen frisches Brot.",
    ),
    (
        "The doors open at dawn.",
        "Les portes s'ouvrent à l'aube.",
        "Las puertas se abren al amanecer.",
        "Die Türen öffnen sich im Morgengrauen.",
    ),
    (
        "Welcome to our neighbourhood bakery.",
        "Bienvenue dans notre boulangerie de quartier.",
        "Bienvenidos a nuestra panadería del barrio.",
        "Willkommen in unserer Bäckerei im Viertel.",
    ),
    (
        "Warm light fills the room.",
        "Une lumière chaude remplit la pièce.",
        "Una luz cálida llena la habitación.",
        "Warmes Licht erfüllt den Raum.",
    ),
    (
        "Our coffee is roasted by hand.",
        "Notre café est torréfié à la main.",
        "Nuestro café se tuesta a mano.",
        "Unser Kaffee wird von Hand geröstet.",
    ),
    (
        "The city wakes up slowly.",
        "La ville se réveille lentement.",
        "La ciudad despierta lentamente.",
        "Die Stadt erwacht langsam.",
    ),
    (
        "A heat pump moves heat from outside to inside.",
        "Une pompe à chaleur transporte la chaleur de l'extérieur vers l'intérieur.",
        "Una bomba de calor lleva el calor de fuera hacia dentro.",
        "Eine Wärmepumpe bringt Wärme von draußen nach drinnen.",
    ),
    (
        "The outdoor unit draws heat from cold air.",
        "L'unité extérieure puise la chaleur de l'air froid.",
        "La unidad exterior extrae calor del aire frío.",
        "Das Außengerät entzieht der kalten Luft Wärme.",
    ),
    (
        "The compressor raises the temperature.",
        "Le compresseur augmente la température.",
        "El compresor eleva la temperatura.",
        "Der Kompressor erhöht die Temperatur.",
    ),
    (
        "The radiators keep the house warm.",
        "Les radiateurs gardent la maison au chaud.",
        "Los radiadores mantienen la casa caliente.",
        "Die Heizkörper halten das Haus warm.",
    ),
    (
        "Save energy every day.",
        "Économisez de l'énergie chaque jour.",
        "Ahorra energía todos los días.",
        "Sparen Sie jeden Tag Energie.",
    ),
    (
        "Our new running shoe is light and fast.",
        "Notre nouvelle chaussure de course est légère et rapide.",
        "Nuestra nueva zapatilla de correr es ligera y rápida.",
        "Unser neuer Laufschuh ist leicht und schnell.",
    ),
    (
        "Run further than ever before.",
        "Courez plus loin que jamais.",
        "Corre más lejos que nunca.",
        "Lauf weiter als je zuvor.",
    ),
    (
        "The old lighthouse stands alone.",
        "Le vieux phare se dresse seul.",
        "El viejo faro está solo.",
        "Der alte Leuchtturm steht allein.",
    ),
    ("The light goes out.", "La lumière s'éteint.", "La luz se apaga.", "Das Licht geht aus."),
    (
        "Join us this weekend.",
        "Rejoignez-nous ce week-end.",
        "Únete a nosotros este fin de semana.",
        "Besuchen Sie uns an diesem Wochenende.",
    ),
    (
        "Book your table today.",
        "Réservez votre table aujourd'hui.",
        "Reserva tu mesa hoy.",
        "Reservieren Sie noch heute Ihren Tisch.",
    ),
    (
        "Made with care since 1952.",
        "Fait avec soin depuis 1952.",
        "Hecho con cariño desde 1952.",
        "Mit Sorgfalt hergestellt seit 1952.",
    ),
    (
        "The river flows through the valley.",
        "La rivière traverse la vallée.",
        "El río atraviesa el valle.",
        "Der Fluss fließt durch das Tal.",
    ),
    (
        "Children play in the park.",
        "Des enfants jouent dans le parc.",
        "Los niños juegan en el parque.",
        "Kinder spielen im Park.",
    ),
    (
        "Rain falls on the quiet street.",
        "La pluie tombe sur la rue calme.",
        "La lluvia cae sobre la calle tranquila.",
        "Regen fällt auf die ruhige Straße.",
    ),
    (
        "Discover the mountains in winter.",
        "Découvrez les montagnes en hiver.",
        "Descubre las montañas en invierno.",
        "Entdecken Sie die Berge im Winter.",
    ),
    (
        "Every cup tells a story.",
        "Chaque tasse raconte une histoire.",
        "Cada taza cuenta una historia.",
        "Jede Tasse erzählt eine Geschichte.",
    ),
    (
        "Simple ingredients, great taste.",
        "Des ingrédients simples, un goût formidable.",
        "Ingredientes sencillos, gran sabor.",
        "Einfache Zutaten, großartiger Geschmack.",
    ),
    (
        "The market opens at eight.",
        "Le marché ouvre à huit heures.",
        "El mercado abre a las ocho.",
        "Der Markt öffnet um acht Uhr.",
    ),
    (
        "Learn something new today.",
        "Apprenez quelque chose de nouveau aujourd'hui.",
        "Aprende algo nuevo hoy.",
        "Lernen Sie heute etwas Neues.",
    ),
    (
        "The train leaves the station.",
        "Le train quitte la gare.",
        "El tren sale de la estación.",
        "Der Zug verlässt den Bahnhof.",
    ),
    (
        "Clean water for every home.",
        "De l'eau propre pour chaque foyer.",
        "Agua limpia para cada hogar.",
        "Sauberes Wasser für jedes Zuhause.",
    ),
    (
        "The sun sets over the sea.",
        "Le soleil se couche sur la mer.",
        "El sol se pone sobre el mar.",
        "Die Sonne geht über dem Meer unter.",
    ),
    ("Thank you for watching.", "Merci d'avoir regardé.", "Gracias por mirar.", "Danke fürs Zuschauen."),
    (
        "Our team is here to help.",
        "Notre équipe est là pour vous aider.",
        "Nuestro equipo está aquí para ayudar.",
        "Unser Team ist für Sie da.",
    ),
    (
        "The festival starts tonight.",
        "Le festival commence ce soir.",
        "El festival empieza esta noche.",
        "Das Festival beginnt heute Abend.",
    ),
];

/// The reference translations into `lang` (`fr`, `es`, `de`), paired with their English
/// sources; `None` for a language the set does not cover.
pub fn pairs(lang: &str) -> Option<Vec<(&'static str, &'static str)>> {
    let pick: fn(&(&'static str, &'static str, &'static str, &'static str)) -> &'static str = match lang {
        "fr" => |s| s.1,
        "es" => |s| s.2,
        "de" => |s| s.3,
        _ => return None,
    };
    Some(SENTENCES.iter().map(|s| (s.0, pick(s))).collect())
}
