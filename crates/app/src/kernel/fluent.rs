//! A Fluent catalogue in the product's languages, English the reference: what the customer
//! notices (`notices`) and the dashboard (`riskdesk-ui`) load their messages into. A message
//! missing in a language falls back to English; [`Catalog::missing`] lists every gap.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use riskdesk_domain::Locale;

pub struct Catalog {
    sources: &'static [(Locale, &'static str)],
    bundles: Vec<(Locale, FluentBundle<FluentResource>)>,
    /// Files that did not parse (their valid messages still load).
    errors: Vec<String>,
}

impl Catalog {
    /// The catalogue of `sources` (English first). Values are written without Unicode
    /// isolation marks: they go into plain text, emails and escaped HTML.
    pub fn new(sources: &'static [(Locale, &'static str)]) -> Self {
        let mut errors = Vec::new();
        let bundles = sources
            .iter()
            .map(|(locale, src)| {
                let res = FluentResource::try_new((*src).to_owned()).unwrap_or_else(|(r, errs)| {
                    errors.push(format!("{}: {} syntax errors", locale.as_str(), errs.len()));
                    r
                });
                let lang = locale
                    .as_str()
                    .parse()
                    .unwrap_or_else(|_| unic_langid::langid!("en"));
                let mut b = FluentBundle::new_concurrent(vec![lang]);
                b.set_use_isolating(false);
                if let Err(e) = b.add_resource(res) {
                    errors.push(format!(
                        "{}: {} duplicate messages",
                        locale.as_str(),
                        e.len()
                    ));
                }
                (*locale, b)
            })
            .collect();
        Catalog {
            sources,
            bundles,
            errors,
        }
    }

    fn bundle(&self, locale: Locale) -> Option<&FluentBundle<FluentResource>> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == locale)
            .map(|(_, b)| b)
    }

    /// One message in `locale`, else in English; None when neither has it.
    pub fn format(&self, locale: Locale, id: &str, args: Option<&FluentArgs>) -> Option<String> {
        for l in [locale, Locale::En] {
            let Some(b) = self.bundle(l) else { continue };
            if let Some(p) = b.get_message(id).and_then(|m| m.value()) {
                let mut errs = vec![];
                return Some(b.format_pattern(p, args, &mut errs).into_owned());
            }
        }
        None
    }

    /// Parse errors, every English message another language lacks ("locale: id"), and every
    /// message a language has that English does not.
    pub fn missing(&self) -> Vec<String> {
        let mut out = self.errors.clone();
        let Some((_, en_src)) = self.sources.first() else {
            return out;
        };
        let en = message_ids(en_src);
        for (locale, src) in self.sources.iter().skip(1) {
            let have = message_ids(src);
            for id in &en {
                if !have.contains(id) {
                    out.push(format!("{}: {id}", locale.as_str()));
                }
            }
            for id in &have {
                if !en.contains(id) {
                    out.push(format!(
                        "{}: {id} is not in the English file",
                        locale.as_str()
                    ));
                }
            }
        }
        out
    }
}

/// The message ids of a Fluent file (lines that start a message).
pub fn message_ids(src: &str) -> Vec<String> {
    src.lines()
        .filter(|l| !l.starts_with([' ', '#', '\t', '.', '[', '*']) && l.contains(" ="))
        .filter_map(|l| l.split(" =").next().map(|s| s.trim().to_owned()))
        .collect()
}
