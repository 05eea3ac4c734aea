//! Requests to one inbox interleaving at their awaits, as workerd lets them:
//! a send racing the alarm, a webhook changed while a delivery is in flight,
//! two deliveries of one message. Each test holds a call out of the object at
//! a gate, drives the racing requests and alarms as futures joined on one
//! thread, then releases the gate and checks what the service guarantees.
#![cfg(not(target_arch = "wasm32"))]

use futures_util::join;
use inbox_do::{InboxConfig, Relay};
use router_worker::MailVerdict;
use serde_json::{Value as Json, json};
use std::cell::Cell;
use testkit::{TestService, WebAnswer, object_id, until, yield_now};

const HOOK: &str = "https://hooks.example.com/inboxkit";
const NEW_HOOK: &str = "https://new-hooks.example.com/inboxkit";
const RELAY_URL: &str = "https://relay.example.com/emails";
/// How long a send's attempt holds its job (inbox-do's `LEASE_MILLIS`).
const LEASE_MILLIS: i64 = 60_000;

fn with_relay(relay: Relay) -> TestService {
    let service = TestService::new();
    service.objects().configure(InboxConfig {
        relay,
        ..InboxConfig::default()
    });
    service
}

fn http_relay() -> Relay {
    Relay::Http {
        api_key: "re_test_key".into(),
        url: RELAY_URL.into(),
    }
}

fn inbound(n: u32) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.com>\r\nTo: alice@agents.test\r\nSubject: Hello {n}\r\n\
         Message-ID: <{n}@example.com>\r\n\r\nHi!\r\n"
    )
    .into_bytes()
}

fn messages(service: &TestService, key: &str) -> Vec<Json> {
    let (status, list) = service.call("GET", "/api/messages", key, None);
    assert_eq!(status, 200, "{list}");
    list["messages"].as_array().expect("a message list").clone()
}

fn deliveries(service: &TestService, key: &str) -> Vec<Json> {
    let (status, list) = service.call("GET", "/api/webhook/deliveries", key, None);
    assert_eq!(status, 200, "{list}");
    list["deliveries"]
        .as_array()
        .expect("a delivery list")
        .clone()
}

fn jobs_of(service: &TestService, handle: &str) -> i64 {
    service.objects().with_db_of(handle, |db| {
        schema::Sql::exec(db, "SELECT count(*) FROM jobs", &[])
            .expect("counting jobs")
            .rows[0][0]
            .as_i64()
            .expect("a count")
    })
}

fn set_webhook(service: &TestService, key: &str, url: &str) {
    let (status, created) = service.call("PUT", "/api/webhook", key, Some(json!({ "url": url })));
    assert_eq!(status, 200, "{created}");
}

fn send_body() -> Option<Json> {
    Some(json!({ "to": "carol@example.com", "subject": "Race", "text": "T" }))
}

/// (a) with the HTTP relay: the first, inline attempt is held at the relay
/// while the clock passes the lease and the alarm runs. The platform ends
/// the relay call at its 30 s timeout, well inside the 60 s lease, so the
/// attempt is over (failed, job gone) before the alarm could retry it.
#[test]
fn a_send_held_at_the_http_relay_past_the_lease_times_out_before_the_alarm() {
    let service = with_relay(http_relay());
    let alice = service.signup("alice");
    let web = service.objects().web();
    let gate = web.hold(RELAY_URL);
    let alarms = Cell::new(None);
    pollster::block_on(async {
        let send = service.call_async("POST", "/api/messages", &alice, send_body());
        let race = async {
            until("the first attempt at the relay", || gate.arrived() == 1).await;
            service.clock.advance(LEASE_MILLIS);
            yield_now().await;
            alarms.set(Some(service.run_alarms_async().await));
            gate.release();
        };
        let ((status, answer), ()) = join!(send, race);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "failed");
        assert_eq!(
            answer["statusReason"],
            "The relay could not be reached: No complete answer within 30 s."
        );
    });
    assert_eq!(
        alarms.get(),
        Some(1),
        "the alarm set for the lease's end ran"
    );
    assert_eq!(
        web.calls_to(RELAY_URL).len(),
        1,
        "the alarm sent nothing again"
    );
    assert_eq!(messages(&service, &alice)[0]["status"], "failed");
    assert_eq!(jobs_of(&service, "alice"), 0);
}

/// (a) with the `send_email` binding, whose calls have no timeout: the first
/// attempt is held there past the lease, the alarm takes the job again and
/// hands the same message over a second time, then both attempts end.
#[test]
fn a_send_held_at_send_email_past_the_lease_races_the_alarm() {
    let service = with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    set_webhook(&service, &alice, HOOK);
    let mailer = service.objects().mailer();
    let gate = mailer.hold();
    let alarm_done = Cell::new(false);
    pollster::block_on(async {
        let send = service.call_async("POST", "/api/messages", &alice, send_body());
        let alarm = async {
            until("the first attempt at send_email", || gate.arrived() == 1).await;
            service.clock.advance(LEASE_MILLIS);
            yield_now().await;
            service.run_alarms_async().await;
            alarm_done.set(true);
        };
        let release = async {
            until("the alarm's attempt, or its end", || {
                gate.arrived() == 2 || alarm_done.get()
            })
            .await;
            gate.release();
        };
        let ((status, answer), (), ()) = join!(send, alarm, release);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "sent");
    });
    // FIXME: the binding got the message twice, so the recipient gets it
    // twice: an attempt must end (time out) before its lease does, so that the
    // alarm never retries a send that is still in flight (issue 9, defect 8).
    // Right: `mailer.sent().len() == 1`.
    assert_eq!(mailer.sent().len(), 2);
    assert_eq!(mailer.sent()[0].raw, mailer.sent()[1].raw);
    assert_eq!(messages(&service, &alice)[0]["status"], "sent");
    // FIXME: each attempt's ending settles the message and queues its own
    // `message.sent`, so the webhook hears of one send twice (with one event
    // id). Right: only the attempt that finds the message still `queued`
    // settles it and queues the event; the later one changes nothing.
    service.run_alarms();
    let events = service.objects().web().calls_to(HOOK);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].body, events[1].body);
    assert_eq!(jobs_of(&service, "alice"), 0);
    service.clock.advance(3_600_000);
    assert_eq!(service.run_alarms(), 0, "nothing is left to do");
}

/// (a) between two inboxes: the call into the recipient's object is held
/// past the lease. The alarm delivers again, and the recipient's duplicate
/// check (the raw message's SHA-256) keeps one copy.
#[test]
fn a_direct_send_held_past_the_lease_is_stored_once_by_the_recipient() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let gate = service.objects().hold(&object_id("bob"));
    let alarm_done = Cell::new(false);
    pollster::block_on(async {
        let send = service.call_async(
            "POST",
            "/api/messages",
            &alice,
            Some(json!({ "to": "bob@agents.test", "text": "T" })),
        );
        let alarm = async {
            until("the first attempt at bob's door", || gate.arrived() == 1).await;
            service.clock.advance(LEASE_MILLIS);
            yield_now().await;
            service.run_alarms_async().await;
            alarm_done.set(true);
        };
        let release = async {
            until("the alarm's attempt, or its end", || {
                gate.arrived() == 2 || alarm_done.get()
            })
            .await;
            gate.release();
        };
        let ((status, answer), (), ()) = join!(send, alarm, release);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "sent");
    });
    // FIXME: the alarm delivered a send still in flight (issue 9, defect 8);
    // right: one call. The duplicate check makes it harmless here.
    assert_eq!(gate.arrived(), 2);
    assert_eq!(messages(&service, &bob).len(), 1, "stored once");
    assert_eq!(messages(&service, &alice)[0]["status"], "sent");
    assert_eq!(jobs_of(&service, "alice"), 0);
}

/// Delivers one message to alice and starts its webhook delivery in the
/// alarm, held at `HOOK`; runs `meanwhile` while it is held, then releases
/// the gate. Returns how many alarms ran.
fn with_delivery_in_flight(service: &TestService, meanwhile: impl AsyncFnOnce()) -> usize {
    let gate = service.objects().web().hold(HOOK);
    assert_eq!(
        service.deliver("bob@example.com", "alice@agents.test", &inbound(1)),
        MailVerdict::Accepted(1)
    );
    pollster::block_on(async {
        let alarm = service.run_alarms_async();
        let change = async {
            until("the delivery at the old URL", || gate.arrived() == 1).await;
            meanwhile().await;
            gate.release();
        };
        let (ran, ()) = join!(alarm, change);
        ran
    })
}

/// (b) The webhook is replaced while a delivery to the old URL is in flight
/// and succeeds: the attempt is recorded, later events go to the new URL only.
#[test]
fn a_webhook_replaced_mid_delivery_gets_the_next_events() {
    let service = TestService::new();
    let alice = service.signup("alice");
    set_webhook(&service, &alice, HOOK);
    let ran = with_delivery_in_flight(&service, async || {
        let (status, created) = service
            .call_async(
                "PUT",
                "/api/webhook",
                &alice,
                Some(json!({ "url": NEW_HOOK })),
            )
            .await;
        assert_eq!(status, 200, "{created}");
    });
    assert_eq!(ran, 1);
    let web = service.objects().web();
    assert_eq!(web.calls_to(HOOK).len(), 1);
    let recorded = deliveries(&service, &alice);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["statusCode"], 200);
    assert_eq!(recorded[0]["messageId"], 1);
    assert_eq!(jobs_of(&service, "alice"), 0);
    service.deliver("bob@example.com", "alice@agents.test", &inbound(2));
    service.run_alarms();
    assert_eq!(web.calls_to(HOOK).len(), 1, "nothing more to the old URL");
    assert_eq!(web.calls_to(NEW_HOOK).len(), 1);
}

/// (b) The webhook is replaced while a delivery to the old URL is in flight
/// and fails: the event is not lost, its retry goes to the new URL.
#[test]
fn a_webhook_replaced_mid_delivery_gets_the_retry_of_a_failed_one() {
    let service = TestService::new();
    let alice = service.signup("alice");
    set_webhook(&service, &alice, HOOK);
    let web = service.objects().web();
    web.script(HOOK, [WebAnswer::Status(503, String::new())]);
    let ran = with_delivery_in_flight(&service, async || {
        let (status, _) = service
            .call_async(
                "PUT",
                "/api/webhook",
                &alice,
                Some(json!({ "url": NEW_HOOK })),
            )
            .await;
        assert_eq!(status, 200);
    });
    assert_eq!(ran, 1);
    let recorded = deliveries(&service, &alice);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["statusCode"], 503);
    assert!(recorded[0]["nextAttemptAt"].is_string(), "{recorded:?}");
    service.clock.advance(10_000);
    assert_eq!(service.run_alarms(), 1);
    let to_old = web.calls_to(HOOK);
    let to_new = web.calls_to(NEW_HOOK);
    assert_eq!((to_old.len(), to_new.len()), (1, 1));
    assert_eq!(to_old[0].body, to_new[0].body, "the same event, retried");
    assert_eq!(jobs_of(&service, "alice"), 0);
}

/// (b) The old URL answers 410 Gone after the webhook was replaced: only a
/// webhook with that URL is removed, so the new one stays.
#[test]
fn a_410_from_the_old_url_does_not_remove_the_new_webhook() {
    let service = TestService::new();
    let alice = service.signup("alice");
    set_webhook(&service, &alice, HOOK);
    service
        .objects()
        .web()
        .script(HOOK, [WebAnswer::Status(410, String::new())]);
    let ran = with_delivery_in_flight(&service, async || {
        let (status, _) = service
            .call_async(
                "PUT",
                "/api/webhook",
                &alice,
                Some(json!({ "url": NEW_HOOK })),
            )
            .await;
        assert_eq!(status, 200);
    });
    assert_eq!(ran, 1);
    let (status, info) = service.call("GET", "/api/webhook", &alice, None);
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["url"], NEW_HOOK);
    assert_eq!(deliveries(&service, &alice)[0]["statusCode"], 410);
    assert_eq!(jobs_of(&service, "alice"), 0);
}

/// (b) The webhook is deleted while a delivery is in flight, which then
/// fails: the attempt is recorded, and nothing is sent afterwards.
#[test]
fn a_webhook_deleted_mid_delivery_gets_nothing_afterwards() {
    let service = TestService::new();
    let alice = service.signup("alice");
    set_webhook(&service, &alice, HOOK);
    let web = service.objects().web();
    web.script(HOOK, [WebAnswer::Status(503, String::new())]);
    let ran = with_delivery_in_flight(&service, async || {
        let (status, _) = service
            .call_async("DELETE", "/api/webhook", &alice, None)
            .await;
        assert_eq!(status, 204);
    });
    assert_eq!(ran, 1);
    let recorded = deliveries(&service, &alice);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["statusCode"], 503);
    // FIXME: the record promises a retry that will never come (the job went
    // with the webhook); right: no `nextAttemptAt`, and an error saying the
    // webhook was removed.
    assert!(recorded[0]["nextAttemptAt"].is_string(), "{recorded:?}");
    assert_eq!(jobs_of(&service, "alice"), 0);
    service.clock.advance(86_400_000);
    service.deliver("bob@example.com", "alice@agents.test", &inbound(2));
    service.run_alarms();
    assert_eq!(web.calls().len(), 1, "nothing after the deletion");
}

/// (c) Two deliveries of the same raw message, interleaved (the first held
/// at the object's door until the second has arrived): stored once.
#[test]
fn two_deliveries_of_one_message_interleaved_store_it_once() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let gate = service.objects().hold(&object_id("alice"));
    let raw = inbound(1);
    let (first, second) = pollster::block_on(async {
        let first = service.deliver_async("bob@example.com", "alice@agents.test", &raw);
        let second = service.deliver_async("bob@example.com", "alice@agents.test", &raw);
        let release = async {
            until("both deliveries at alice's door", || gate.arrived() == 2).await;
            gate.release();
        };
        let (first, second, ()) = join!(first, second, release);
        (first, second)
    });
    let mut verdicts = [first, second];
    verdicts.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(
        verdicts,
        [MailVerdict::Accepted(1), MailVerdict::Duplicate(1)]
    );
    assert_eq!(messages(&service, &alice).len(), 1);
}

/// (c) Two deliveries of one message while a webhook delivery holds the
/// object at an await: both run in that gap, one stores, one is a duplicate,
/// and one event is queued.
#[test]
fn two_deliveries_of_one_message_during_a_webhook_delivery_store_it_once() {
    let service = TestService::new();
    let alice = service.signup("alice");
    set_webhook(&service, &alice, HOOK);
    let raw = inbound(7);
    let ran = with_delivery_in_flight(&service, async || {
        let (first, second) = join!(
            service.deliver_async("bob@example.com", "alice@agents.test", &raw),
            service.deliver_async("bob@example.com", "alice@agents.test", &raw),
        );
        assert_eq!(
            (first, second),
            (MailVerdict::Accepted(2), MailVerdict::Duplicate(2))
        );
    });
    assert_eq!(ran, 2, "the first event's, then the second's");
    assert_eq!(messages(&service, &alice).len(), 2);
    assert_eq!(service.objects().web().calls_to(HOOK).len(), 2);
    assert_eq!(jobs_of(&service, "alice"), 0);
}
