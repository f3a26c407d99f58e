"""Built-in citizen-facing texts: re-prompts, help, opt-out confirmations.

Plain language, short (each fits one SMS where the alphabet allows). Flows can
override the re-prompt per step (``invalid:``) and the expiry message (``expired:``).
A language missing here falls back to English, then to the flow's own texts.
"""

from __future__ import annotations

SYSTEM_TEXTS: dict[str, dict[str, str]] = {
    "invalid_scale": {
        "fi": "Vastaa numerolla {low}–{high}.",
        "sv": "Svara med en siffra {low}–{high}.",
        "en": "Please reply with a number {low}–{high}.",
        "et": "Palun vasta numbriga {low}–{high}.",
        "ru": "Пожалуйста, ответьте числом {low}–{high}.",
        "uk": "Будь ласка, дайте відповідь числом {low}–{high}.",
    },
    "invalid_smiley": {
        "fi": "Vastaa numerolla {low}–{high} tai hymiöllä {faces}",
        "sv": "Svara med en siffra {low}–{high} eller en smiley {faces}",
        "en": "Please reply with a number {low}–{high} or a face {faces}",
        "et": "Palun vasta numbriga {low}–{high} või näoga {faces}",
        "ru": "Ответьте числом {low}–{high} или смайликом {faces}",
        "uk": "Дайте відповідь числом {low}–{high} або смайликом {faces}",
    },
    "invalid_choice": {
        "fi": "Vastaa jollakin näistä: {options}",
        "sv": "Svara med något av dessa: {options}",
        "en": "Please reply with one of these: {options}",
        "et": "Palun vasta ühega neist: {options}",
        "ru": "Ответьте одним из вариантов: {options}",
        "uk": "Дайте відповідь одним із варіантів: {options}",
    },
    "invalid_yes_no": {
        "fi": "Vastaa KYLLÄ tai EI.",
        "sv": "Svara JA eller NEJ.",
        "en": "Please reply YES or NO.",
        "et": "Palun vasta JAH või EI.",
        "ru": "Ответьте ДА или НЕТ.",
        "uk": "Дайте відповідь ТАК або НІ.",
    },
    "invalid_number": {
        "fi": "Vastaa numerolla {low}–{high}.",
        "sv": "Svara med ett tal {low}–{high}.",
        "en": "Please reply with a number {low}–{high}.",
        "et": "Palun vasta arvuga {low}–{high}.",
        "ru": "Ответьте числом {low}–{high}.",
        "uk": "Дайте відповідь числом {low}–{high}.",
    },
    "invalid_text": {
        "fi": "Kirjoita vastauksesi tekstinä.",
        "sv": "Skriv ditt svar som text.",
        "en": "Please write your answer as text.",
        "et": "Palun kirjuta vastus tekstina.",
        "ru": "Пожалуйста, напишите ответ текстом.",
        "uk": "Будь ласка, напишіть відповідь текстом.",
    },
    "skip_hint": {
        "fi": "Voit myös ohittaa: vastaa OHITA.",
        "sv": "Du kan också hoppa över: svara HOPPA ÖVER.",
        "en": "You can also skip: reply SKIP.",
        "et": "Võid ka vahele jätta: vasta JÄTA.",
        "ru": "Можно пропустить: ответьте ПРОПУСТИТЬ.",
        "uk": "Можна пропустити: дайте відповідь ПРОПУСТИТИ.",
    },
    "media_not_understood": {
        "fi": "En voi lukea kuvia tai ääniviestejä. Vastaa tekstillä.",
        "sv": "Jag kan inte läsa bilder eller röstmeddelanden. Svara med text.",
        "en": "I can't read pictures or voice messages. Please reply with text.",
        "et": "Ma ei saa lugeda pilte ega häälsõnumeid. Palun vasta tekstiga.",
        "ru": "Я не могу прочитать фото или голосовые сообщения. Ответьте текстом.",
        "uk": "Я не можу прочитати фото чи голосові. Дайте відповідь текстом.",
    },
    "too_many_invalid": {
        "fi": "Emme saaneet vastausta. Kysely päättyy tähän. Kiitos!",
        "sv": "Vi fick inget svar. Enkäten avslutas här. Tack!",
        "en": "We didn't get an answer, so the survey ends here. Thank you!",
        "et": "Me ei saanud vastust, küsitlus lõpeb siin. Aitäh!",
        "ru": "Мы не получили ответа, опрос завершён. Спасибо!",
        "uk": "Ми не отримали відповіді, опитування завершено. Дякуємо!",
    },
    "expired": {
        "fi": "Tämä kysely on jo päättynyt. Kiitos!",
        "sv": "Den här enkäten har redan avslutats. Tack!",
        "en": "This survey has already closed. Thank you!",
        "et": "See küsitlus on juba lõppenud. Aitäh!",
        "ru": "Этот опрос уже закрыт. Спасибо!",
        "uk": "Це опитування вже закрите. Дякуємо!",
    },
    "opted_out": {
        "fi": "Et saa enää kyselyitä meiltä. Jos haluat ne takaisin, vastaa ALOITA.",
        "sv": "Du får inga fler enkäter från oss. Svara BÖRJA för att få dem igen.",
        "en": "You will get no more surveys from us. Reply START to get them again.",
        "et": "Sa ei saa meilt enam küsitlusi. Vasta START, et neid jälle saada.",
        "ru": "Вы больше не будете получать опросы. Ответьте START, чтобы снова их получать.",
        "uk": "Ви більше не отримуватимете опитувань. Відповідайте START, щоб отримувати знову.",
    },
    "opted_in": {
        "fi": "Saat taas kyselyitä meiltä. Lopettaaksesi vastaa LOPETA.",
        "sv": "Du får enkäter från oss igen. Svara STOPPA för att sluta.",
        "en": "You will get surveys from us again. Reply STOP to stop.",
        "et": "Sa saad meilt jälle küsitlusi. Lõpetamiseks vasta STOP.",
        "ru": "Вы снова будете получать опросы. Чтобы отказаться, ответьте STOP.",
        "uk": "Ви знову отримуватимете опитування. Щоб відмовитися, відповідайте STOP.",
    },
    "help": {
        "fi": "{organisation} kysyy palautetta palvelustaan.{contact} "
        "Lopettaaksesi vastaa LOPETA. Kieli: FI suomi, SV svenska, EN English.",
        "sv": "{organisation} ber om respons på sin service.{contact} "
        "Svara STOPPA för att sluta. Språk: FI suomi, SV svenska, EN English.",
        "en": "{organisation} is asking for feedback on its service.{contact} "
        "Reply STOP to stop. Language: FI suomi, SV svenska, EN English.",
        "et": "{organisation} küsib tagasisidet oma teenuse kohta.{contact} "
        "Lõpetamiseks vasta STOP.",
        "ru": "{organisation} просит отзыв о своей услуге.{contact} "
        "Чтобы отказаться, ответьте STOP.",
        "uk": "{organisation} просить відгук про свою послугу.{contact} "
        "Щоб відмовитися, відповідайте STOP.",
    },
    "no_survey": {
        "fi": "Hei! Anna palautetta lähettämällä {keywords}.",
        "sv": "Hej! Ge respons genom att skicka {keywords}.",
        "en": "Hello! To give feedback, send {keywords}.",
        "et": "Tere! Tagasiside andmiseks saada {keywords}.",
        "ru": "Здравствуйте! Чтобы оставить отзыв, отправьте {keywords}.",
        "uk": "Вітаємо! Щоб залишити відгук, надішліть {keywords}.",
    },
    "no_survey_without_keywords": {
        "fi": "Hei! Sinulla ei ole nyt avointa kyselyä.",
        "sv": "Hej! Du har ingen öppen enkät just nu.",
        "en": "Hello! You have no open survey right now.",
        "et": "Tere! Sul ei ole praegu avatud küsitlust.",
        "ru": "Здравствуйте! Сейчас у вас нет открытого опроса.",
        "uk": "Вітаємо! Зараз у вас немає відкритого опитування.",
    },
    "unknown_code": {
        "fi": "Tätä koodia ei löytynyt. Tarkista koodi tai lähetä {keywords}.",
        "sv": "Koden hittades inte. Kontrollera koden eller skicka {keywords}.",
        "en": "We couldn't find that code. Check it or send {keywords}.",
        "et": "Seda koodi ei leitud. Kontrolli koodi või saada {keywords}.",
        "ru": "Код не найден. Проверьте код или отправьте {keywords}.",
        "uk": "Код не знайдено. Перевірте код або надішліть {keywords}.",
    },
    "language_menu": {
        "fi": "Valitse kieli: {choices}",
        "sv": "Välj språk: {choices}",
        "en": "Choose a language: {choices}",
        "et": "Vali keel: {choices}",
        "ru": "Выберите язык: {choices}",
        "uk": "Оберіть мову: {choices}",
    },
    "unsupported_language": {
        "fi": "Valitettavasti kysely on vain näillä kielillä: {names}.",
        "sv": "Tyvärr finns enkäten bara på dessa språk: {names}.",
        "en": "Sorry, this survey is only available in: {names}.",
        "et": "Kahjuks on küsitlus ainult neis keeltes: {names}.",
        "ru": "К сожалению, опрос доступен только на языках: {names}.",
        "uk": "На жаль, опитування доступне лише мовами: {names}.",
    },
    "yes": {"fi": "Kyllä", "sv": "Ja", "en": "Yes", "et": "Jah", "ru": "Да", "uk": "Так"},
    "no": {"fi": "Ei", "sv": "Nej", "en": "No", "et": "Ei", "ru": "Нет", "uk": "Ні"},
}

# Each language by its own name ("suomi", "svenska", "English"), as people look for it in
# a menu: language code -> name. The one table of language names; code -> name only.
LANGUAGE_NAMES: dict[str, str] = {
    "fi": "suomi",
    "sv": "svenska",
    "en": "English",
    "se": "davvisámegiella",
    "et": "eesti",
    "ru": "русский",
    "uk": "українська",
    "ar": "العربية",
    "so": "Soomaali",
    "de": "Deutsch",
    "fr": "français",
    "es": "español",
    "fa": "فارسی",
    "ku": "Kurdî",
    "sq": "shqip",
    "vi": "Tiếng Việt",
    "zh": "中文",
    "th": "ไทย",
    "tr": "Türkçe",
    "pl": "polski",
}


def language_name(code: str) -> str:
    """The language's own name, or the code itself for a language not in the table."""
    return LANGUAGE_NAMES.get(code, code)


# Smiley faces, from the worst to the best, per scale size.
SMILEY_FACES: dict[int, tuple[str, ...]] = {
    4: ("😞", "🙁", "🙂", "😀"),
    5: ("😞", "🙁", "😐", "🙂", "😀"),
}

# Spoken words for the faces (screen readers, button labels), worst to best.
SMILEY_WORDS: dict[str, dict[int, tuple[str, ...]]] = {
    "fi": {
        4: ("Erittäin tyytymätön", "Tyytymätön", "Tyytyväinen", "Erittäin tyytyväinen"),
        5: ("Erittäin huono", "Huono", "Ei hyvä eikä huono", "Hyvä", "Erittäin hyvä"),
    },
    "sv": {
        4: ("Mycket missnöjd", "Missnöjd", "Nöjd", "Mycket nöjd"),
        5: ("Mycket dålig", "Dålig", "Varken bra eller dålig", "Bra", "Mycket bra"),
    },
    "en": {
        4: ("Very unhappy", "Unhappy", "Happy", "Very happy"),
        5: ("Very poor", "Poor", "Neither good nor poor", "Good", "Very good"),
    },
}


def system_text(key: str, language: str, **values: str | int) -> str:
    """A built-in text in ``language`` (English when that language has none)."""
    texts = SYSTEM_TEXTS[key]
    template = texts.get(language) or texts["en"]
    return template.format(**values) if values else template


def has_system_language(language: str) -> bool:
    return language in SYSTEM_TEXTS["help"]
