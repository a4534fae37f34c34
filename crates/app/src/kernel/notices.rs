//! Customer notices and the collections policy document, in the customer's language (Fluent
//! files in `crates/app/locales/`). Both are generated from the same policy data the
//! dunning engine runs, so what a customer reads is what the engine does.
//!
//! A message missing in a language falls back to English; [`missing_translations`] lists every
//! such gap (CI runs it through a test and `riskdesk notices check`).

use std::sync::OnceLock;

use fluent_bundle::{FluentArgs, FluentValue};
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::dunning::{Lever, Policy};
use riskdesk_domain::billing::format;
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::{CloudInstance, Locale};

use crate::kernel::fluent::Catalog;

const SOURCES: [(Locale, &str); 5] = [
    (Locale::En, include_str!("../../locales/en.ftl")),
    (Locale::ZhCn, include_str!("../../locales/zh-CN.ftl")),
    (Locale::ZhTw, include_str!("../../locales/zh-TW.ftl")),
    (Locale::FrFr, include_str!("../../locales/fr-FR.ftl")),
    (Locale::PtBr, include_str!("../../locales/pt-BR.ftl")),
];

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog::new(&SOURCES))
}

/// One message in `locale`, falling back to English, then to the message id itself.
pub fn text(locale: Locale, id: &str, args: &FluentArgs) -> String {
    catalog()
        .format(locale, id, Some(args))
        .unwrap_or_else(|| id.to_owned())
}

/// Every message English has that another language lacks, as "locale: id", plus parse errors.
pub fn missing_translations() -> Vec<String> {
    catalog().missing()
}

/// What a dunning notice says about one invoice.
pub struct NoticeFacts<'a> {
    pub customer: &'a str,
    pub partner: &'a str,
    pub invoice: &'a str,
    pub open: Money,
    pub due: Day,
    /// The lever this step applies (as the customer's cloud allows it).
    pub applied: Lever,
    /// The lever waits for an analyst's approval (the notice must not say it is done).
    pub awaiting_approval: bool,
    /// The next step's earliest day and its effect, if any.
    pub next: Option<(Day, Lever)>,
    /// The day the notice goes out: a run catching up on a late book sends notices after the
    /// day they were meant for, and their text must fit the day they are read.
    pub sent_on: Day,
}

/// (subject, body) of a notice in the customer's language.
pub fn render_notice(locale: Locale, notice: &str, f: &NoticeFacts) -> (String, String) {
    let mut a = FluentArgs::new();
    a.set("customer", f.customer.to_owned());
    a.set("partner", f.partner.to_owned());
    a.set("invoice", f.invoice.to_owned());
    a.set("amount", format::money(&f.open, locale));
    a.set("due_date", format::date(f.due, locale));
    // A reminder sent once the due date has passed (a catch-up run) says so, with how late.
    let notice = if notice == "invoice_due_soon" && f.sent_on > f.due {
        a.set("days", i64::from(f.sent_on.0 - f.due.0));
        "invoice_due_soon-late"
    } else {
        notice
    };
    let subject = text(locale, &format!("{notice}-subject"), &a);
    let mut body = vec![
        text(locale, "greeting", &a),
        String::new(),
        text(locale, &format!("{notice}-body"), &a),
    ];
    if f.applied != Lever::None {
        let id = if f.awaiting_approval && f.applied != Lever::BlockNewPurchases {
            "applied-awaiting".to_owned()
        } else {
            format!("applied-{}", f.applied.as_str())
        };
        body.push(text(locale, &id, &a));
    }
    // A next step whose day has already come goes out in the same run, saying what it does.
    if let Some((day, lever)) = f.next.filter(|(day, _)| *day > f.sent_on) {
        let mut n = FluentArgs::new();
        n.set("date", format::date(day, locale));
        n.set(
            "effect",
            text(locale, &format!("effect-{}", lever.as_str()), &a),
        );
        body.push(String::new());
        body.push(text(locale, "next-step", &n));
    }
    body.push(String::new());
    body.push(text(locale, "paid-already", &a));
    body.push(String::new());
    body.push(text(locale, "signoff", &a));
    (subject, body.join("\n"))
}

/// How the policy document is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocFormat {
    Text,
    Html,
}

/// The collections policy that applies to a customer, in its language: each step of the
/// ladder with when it comes and what it does on the customer's cloud.
pub fn render_policy(
    locale: Locale,
    policy: &Policy,
    instance: CloudInstance,
    currency: Option<Currency>,
    fmt: DocFormat,
) -> String {
    let none = FluentArgs::new();
    let title = text(locale, "policy-title", &none);
    let intro = text(locale, "policy-intro", &none);
    let mut items = Vec::new();
    let mut capped = false;
    for s in &policy.steps {
        let mut a = FluentArgs::new();
        a.set("days", FluentValue::from(s.offset_days.unsigned_abs()));
        let when = match s.offset_days {
            d if d < 0 => text(locale, "policy-when-before", &a),
            0 => text(locale, "policy-when-on", &a),
            _ => text(locale, "policy-when-after", &a),
        };
        let lever = s.lever.on(instance);
        capped |= lever != s.lever;
        let mut b = FluentArgs::new();
        b.set("when", when);
        b.set(
            "notice",
            text(locale, &format!("title-{}", s.notice), &none),
        );
        b.set(
            "effect",
            text(locale, &format!("status-{}", lever.as_str()), &none),
        );
        items.push(text(locale, "policy-step", &b));
    }
    let mut notes = Vec::new();
    if policy.steps.iter().any(|s| s.lever != Lever::None) {
        let mut a = FluentArgs::new();
        a.set("days", FluentValue::from(policy.min_notice_days));
        notes.push(text(locale, "policy-min-notice", &a));
    }
    if let Some(c) = currency {
        let min = policy.min_overdue_minor(c);
        if min > 0 {
            let mut a = FluentArgs::new();
            a.set(
                "amount",
                format::money(
                    &Money {
                        minor: min,
                        currency: c,
                    },
                    locale,
                ),
            );
            notes.push(text(locale, "policy-minimum", &a));
        }
    }
    if capped {
        notes.push(text(locale, "policy-no-cancel", &none));
    }
    notes.push(text(locale, "policy-restore", &none));
    match fmt {
        DocFormat::Text => {
            let mut out = format!("{title}\n\n{intro}\n\n");
            for (i, it) in items.iter().enumerate() {
                out.push_str(&format!("{}. {it}\n", i + 1));
            }
            for n in &notes {
                out.push_str(&format!("\n{n}"));
            }
            out.push('\n');
            out
        }
        DocFormat::Html => {
            let e = html_escape;
            let mut out = format!(
                "<!doctype html>\n<html lang=\"{}\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<h1>{}</h1>\n<p>{}</p>\n<ol>\n",
                locale.as_str(),
                e(&title),
                e(&title),
                e(&intro)
            );
            for it in &items {
                out.push_str(&format!("<li>{}</li>\n", e(it)));
            }
            out.push_str("</ol>\n");
            for n in &notes {
                out.push_str(&format!("<p>{}</p>\n", e(n)));
            }
            out.push_str("</body>\n</html>\n");
            out
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        assert_eq!(missing_translations(), Vec::<String>::new());
    }

    fn facts() -> NoticeFacts<'static> {
        NoticeFacts {
            customer: "Fabrikam",
            partner: "Contoso Cloud",
            invoice: "INV-7",
            open: Money::parse("1234.5", Currency::parse("EUR").unwrap()).unwrap(),
            due: Day::parse("2026-12-01").unwrap(),
            applied: Lever::BlockNewPurchases,
            awaiting_approval: false,
            next: Some((Day::parse("2026-12-16").unwrap(), Lever::DisableAccess)),
            sent_on: Day::parse("2026-12-08").unwrap(),
        }
    }

    /// A reminder that goes out after its invoice's due date (a catch-up run) speaks of the
    /// past, with how many days late, in every language; on time it speaks of the future.
    #[test]
    fn a_late_reminder_says_the_invoice_was_due_in_every_language() {
        let late = NoticeFacts {
            applied: Lever::None,
            next: Some((Day::parse("2026-12-02").unwrap(), Lever::None)),
            sent_on: Day::parse("2026-12-13").unwrap(),
            ..facts()
        };
        let expect = [
            (Locale::En, "was due on", "is now 12 days overdue"),
            (Locale::ZhCn, "已于", "现已逾期 12 天"),
            (Locale::ZhTw, "已於", "現已逾期 12 天"),
            (Locale::FrFr, "était due le", "en retard de 12 jours"),
            (Locale::PtBr, "venceu em", "está 12 dias em atraso"),
        ];
        for (locale, past, days) in expect {
            let (subject, body) = render_notice(locale, "invoice_due_soon", &late);
            assert!(subject.contains(past), "{locale:?}: {subject}");
            assert!(
                body.contains(past) && body.contains(days),
                "{locale:?}: {body}"
            );
            let (_, on_time) = render_notice(
                locale,
                "invoice_due_soon",
                &NoticeFacts {
                    sent_on: Day::parse("2026-11-28").unwrap(),
                    ..late
                },
            );
            assert!(!on_time.contains(days), "{locale:?}: {on_time}");
        }
        let (_, en) = render_notice(
            Locale::En,
            "invoice_due_soon",
            &NoticeFacts {
                sent_on: Day::parse("2026-12-02").unwrap(),
                ..late
            },
        );
        assert!(en.contains("is now 1 day overdue"), "{en}");
        // The next step's day has passed: no line promising it for the past (sent before it,
        // the line is there).
        let (_, b) = render_notice(Locale::En, "invoice_due_soon", &late);
        assert!(!b.contains("December 2,"), "{b}");
        let early = NoticeFacts {
            sent_on: Day::parse("2026-11-28").unwrap(),
            ..late
        };
        let (_, b) = render_notice(Locale::En, "invoice_due_soon", &early);
        assert!(b.contains("December 2,"), "{b}");
    }

    /// Snapshots: the whole final warning in each language.
    #[test]
    fn a_final_warning_in_every_language() {
        let expect = [
            (
                Locale::En,
                "Final warning: invoice INV-7 is unpaid",
                "Hello Fabrikam,\n\nInvoice INV-7 (EUR\u{a0}1,234.50, due on December 1, 2026) is still unpaid. This is our final warning before your services are affected.\nNew purchases are blocked until the invoice is paid; your current services continue.\n\nIf the invoice is still unpaid on December 16, 2026: access to your subscriptions will be blocked.\n\nIf you have already paid, thank you, and please ignore this notice.\n\nKind regards,\nContoso Cloud",
            ),
            (
                Locale::FrFr,
                "Dernier avertissement : la facture INV-7 est impayée",
                "Bonjour Fabrikam,\n\nLa facture INV-7 (1\u{202f}234,50\u{a0}EUR, échéance le 1er\u{a0}décembre 2026) reste impayée. Ceci est notre dernier avertissement avant que vos services ne soient affectés.\nLes nouveaux achats sont bloqués jusqu’au paiement de la facture ; vos services actuels continuent.\n\nSi la facture est toujours impayée le 16\u{a0}décembre 2026 : l’accès à vos abonnements sera bloqué.\n\nSi vous avez déjà payé, merci, et veuillez ignorer cet avis.\n\nCordialement,\nContoso Cloud",
            ),
            (
                Locale::PtBr,
                "Último aviso: a fatura INV-7 não foi paga",
                "Olá, Fabrikam,\n\nA fatura INV-7 (EUR\u{a0}1.234,50, vencimento em 1 de dezembro de 2026) continua em aberto. Este é o nosso último aviso antes que seus serviços sejam afetados.\nNovas compras estão bloqueadas até o pagamento da fatura; seus serviços atuais continuam.\n\nSe a fatura continuar em aberto em 16 de dezembro de 2026: o acesso às suas assinaturas será bloqueado.\n\nSe você já pagou, obrigado, e desconsidere este aviso.\n\nAtenciosamente,\nContoso Cloud",
            ),
            (
                Locale::ZhCn,
                "最后警告：发票 INV-7 尚未付款",
                "Fabrikam，您好：\n\n发票 INV-7（EUR\u{a0}1,234.50，到期日 2026年12月1日）仍未付款。这是您的服务受到影响之前的最后警告。\n在发票付清之前，新购买将被阻止；您现有的服务将继续运行。\n\n如果发票在 2026年12月16日 仍未付款：您对订阅的访问将被阻止。\n\n如果您已付款，谢谢，请忽略本通知。\n\n此致\nContoso Cloud",
            ),
            (
                Locale::ZhTw,
                "最後警告：發票 INV-7 尚未付款",
                "Fabrikam，您好：\n\n發票 INV-7（EUR\u{a0}1,234.50，到期日 2026年12月1日）仍未付款。這是您的服務受到影響之前的最後警告。\n在發票付清之前，新購買將被封鎖；您現有的服務將繼續運作。\n\n如果發票在 2026年12月16日 仍未付款：您對訂閱的存取將被封鎖。\n\n如果您已付款，謝謝，請忽略本通知。\n\n敬祝 順心\nContoso Cloud",
            ),
        ];
        for (locale, subject, body) in expect {
            let (s, b) = render_notice(locale, "final_warning", &facts());
            assert_eq!(s, subject, "{locale:?}");
            assert_eq!(b, body, "{locale:?}");
        }
    }

    #[test]
    fn every_notice_renders_in_every_language_without_a_raw_message_id() {
        for l in Locale::ALL {
            for n in riskdesk_domain::billing::dunning::NOTICES {
                let (s, b) = render_notice(l, n, &facts());
                assert!(!s.contains("-subject") && !b.contains("-body"), "{l:?} {n}");
                assert!(b.contains("INV-7"), "{l:?} {n}: {b}");
            }
        }
    }

    #[test]
    fn the_policy_document_follows_the_policy_and_the_cloud() {
        let p = Policy::default();
        let global = render_policy(Locale::En, &p, CloudInstance::Global, None, DocFormat::Text);
        assert!(
            global.contains(
                "1. 3 days before the due date: a payment reminder. Your services are not affected."
            ),
            "{global}"
        );
        assert!(global.contains("6. 60 days after the due date: a notice that subscriptions are cancelled. Your subscriptions are cancelled."), "{global}");
        assert!(global.contains("has been out for 5 days."), "{global}");
        let china = render_policy(
            Locale::ZhCn,
            &p,
            CloudInstance::China21vianet,
            None,
            DocFormat::Text,
        );
        assert!(
            china.contains("到期日后 60 天：订阅被取消的通知。您对订阅的访问被阻止。"),
            "{china}"
        );
        assert!(china.contains("订阅不会因未付款而被取消"));
        let html = render_policy(
            Locale::FrFr,
            &p,
            CloudInstance::Global,
            None,
            DocFormat::Html,
        );
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"fr-FR\">"));
        assert!(html.contains("<li>1 jour après l’échéance : un avis de retard. Vos services ne sont pas affectés.</li>"), "{html}");
    }
}

/// Tells the customer, in its language, what an action did to one of its subscriptions (by
/// email through the outbox; once per action). Other actions do not write to the customer.
pub async fn queue_action_notice(
    tx: &mut riskdesk_storage::Tx,
    tenant: riskdesk_domain::TenantId,
    action: &riskdesk_storage::actions::ActionRow,
    now: jiff::Timestamp,
) -> Result<(), crate::kernel::error::AppError> {
    if !matches!(
        action.kind.as_str(),
        "suspend" | "disable_access" | "reactivate" | "cancel"
    ) {
        return Ok(());
    }
    let Some(sid) = action.subscription_id else {
        return Ok(());
    };
    let c = riskdesk_storage::customers::get_tx(
        tx,
        tenant,
        riskdesk_domain::CustomerId(action.customer_id),
    )
    .await?;
    let sub = riskdesk_storage::subscriptions::get_with_instance_tx(
        tx,
        tenant,
        riskdesk_domain::SubscriptionId(sid),
    )
    .await?;
    let partner = riskdesk_storage::tenants::get_tx(tx, tenant).await?.name;
    let locale = Locale::parse(&c.locale).unwrap_or(Locale::En);
    let mut a = FluentArgs::new();
    a.set("customer", c.name.clone());
    a.set("partner", partner);
    a.set("offer", sub.sub.offer.clone());
    let subject = text(locale, &format!("action-{}-subject", action.kind), &a);
    let body = [
        text(locale, "greeting", &a),
        String::new(),
        text(locale, &format!("action-{}-body", action.kind), &a),
        String::new(),
        text(locale, "signoff", &a),
    ]
    .join("\n");
    crate::kernel::outbox::email(
        tx,
        tenant,
        Some(c.id),
        &c.email,
        &format!("action.{}", action.kind),
        format!("action:{}:customer", action.id),
        subject,
        body,
        now,
    )
    .await?;
    Ok(())
}
