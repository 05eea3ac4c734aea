//! Requests to one inbox interleaving at their awaits, as workerd lets them:
//! a send racing the alarm, a webhook changed while a delivery is in flight,
//! two deliveries of one message. Each test holds a call out of the object at
//! a gate, drives the racing requests and alarms as futures joined on one
//! thread, then releases the gate and checks what the service guarantees.
#![cfg(not(target_arch = "wasm32"))]

use futures_util::join;
use inbox_do::Relay;
use router_worker::MailVerdict;
use serde_json::{Value as Json, json};
use std::cell::Cell;
use testkit::{TestService, WebAnswer, object_id, until, yield_now};

const HOOK: &str = "https://hooks.example.com/inboxkit";
const NEW_HOOK: &str = "https://new-hooks.example.com/inboxkit";
const RELAY_URL: &str = "https://relay.example.com/emails";
/// How long a send's attempt holds its job (inbox-do's `LEASE_MILLIS`).
const LEASE_MILLIS: i64 = 60_000;

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

fn send_body() -> Option<Json> {
    Some(json!({ "to": "carol@example.com", "subject": "Race", "text": "T" }))
}

/// (a) with the HTTP relay: the first, inline attempt is held at the relay
/// while the clock passes the lease and the alarm runs. The platform ends
/// the relay call at its 30 s timeout, well inside the 60 s lease, so the
/// attempt is over (failed, job gone) before the alarm could retry it.
#[test]
fn a_send_held_at_the_http_relay_past_the_lease_times_out_before_the_alarm() {
    let service = TestService::with_relay(http_relay());
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
    assert_eq!(service.messages(&alice)[0]["status"], "failed");
    assert_eq!(jobs_of(&service, "alice"), 0);
}

/// How long a hand-over may take (inbox-do's `HANDOVER_TIMEOUT_MILLIS`).
const HANDOVER_TIMEOUT_MILLIS: i64 = 30_000;

/// (a) with the `send_email` binding: the first attempt is held there. Its
/// hand-over times out (at 30 s) before its lease ends (at 60 s), as the
/// platform's timers fire in time order, so when the alarm comes the send is
/// settled and nothing is handed over again.
#[test]
fn a_send_held_at_send_email_times_out_within_its_lease_and_is_not_sent_again() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    service.set_webhook(&alice, HOOK);
    let mailer = service.objects().mailer();
    let gate = mailer.hold();
    let alarms = Cell::new(None);
    pollster::block_on(async {
        let send = service.call_async("POST", "/api/messages", &alice, send_body());
        let race = async {
            until("the first attempt at send_email", || gate.arrived() == 1).await;
            service.clock.advance(HANDOVER_TIMEOUT_MILLIS);
            yield_now().await;
            service
                .clock
                .advance(LEASE_MILLIS - HANDOVER_TIMEOUT_MILLIS);
            alarms.set(Some(service.run_alarms_async().await));
            gate.release();
        };
        let ((status, answer), ()) = join!(send, race);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "failed");
        assert_eq!(
            answer["statusReason"],
            "The send_email binding did not answer within 30 s; the message may have been sent."
        );
    });
    assert_eq!(
        alarms.get(),
        Some(1),
        "the alarm set for the lease's end ran"
    );
    assert_eq!(mailer.sent().len(), 1, "handed over once");
    assert_eq!(gate.arrived(), 1, "the alarm called the binding no more");
    assert_eq!(service.messages(&alice)[0]["status"], "failed");
    assert_eq!(jobs_of(&service, "alice"), 0);
    service.clock.advance(3_600_000);
    service.run_alarms();
    assert!(
        service.objects().web().calls_to(HOOK).is_empty(),
        "no message.sent for a send that failed"
    );
}

/// (a) again, with the platform's timer late: the alarm takes the job again
/// (its lease is over) before the first attempt notices its timeout, and both
/// hand-overs succeed. Only the first to end settles the message; the second
/// changes nothing, so `message.sent` is queued once, not twice. (Two
/// hand-overs are the at-least-once case a late timer still allows.)
#[test]
fn of_two_attempts_at_one_send_only_the_first_to_end_settles_it() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    service.set_webhook(&alice, HOOK);
    let mailer = service.objects().mailer();
    let gate = mailer.hold();
    let alarm_done = Cell::new(false);
    pollster::block_on(async {
        let send = service.call_async("POST", "/api/messages", &alice, send_body());
        let alarm = async {
            until("the first attempt at send_email", || gate.arrived() == 1).await;
            // No yield between: the alarm runs before the held attempt is
            // polled again and sees that its time is up.
            service.clock.advance(LEASE_MILLIS);
            service.run_alarms_async().await;
            alarm_done.set(true);
        };
        let release = async {
            until("the alarm's attempt at send_email", || gate.arrived() == 2).await;
            gate.release();
        };
        let ((status, answer), (), ()) = join!(send, alarm, release);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "sent", "the first attempt ended first");
    });
    assert!(alarm_done.get());
    assert_eq!(
        mailer.sent().len(),
        2,
        "the late timer let a second hand-over through"
    );
    assert_eq!(service.messages(&alice)[0]["status"], "sent");
    assert_eq!(jobs_of(&service, "alice"), 0);
    service.clock.advance(3_600_000);
    service.run_alarms();
    let events = service.objects().web().calls_to(HOOK);
    assert_eq!(
        events.len(),
        1,
        "message.sent once, by the attempt that settled it"
    );
    assert!(
        String::from_utf8_lossy(&events[0].body).contains("message.sent"),
        "{events:?}"
    );
}

/// (a) between two inboxes: the call into the recipient's object is held.
/// It times out within the lease, so the alarm does not deliver it again. The
/// abandoned call is dropped before it reaches bob's object (on workerd an
/// aborted call may or may not have been served, which the sender cannot know).
#[test]
fn a_direct_send_held_past_its_timeout_is_not_delivered_again() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let gate = service.objects().hold(&object_id("bob"));
    pollster::block_on(async {
        let send = service.call_async(
            "POST",
            "/api/messages",
            &alice,
            Some(json!({ "to": "bob@agents.test", "text": "T" })),
        );
        let race = async {
            until("the first attempt at bob's door", || gate.arrived() == 1).await;
            service.clock.advance(HANDOVER_TIMEOUT_MILLIS);
            yield_now().await;
            service
                .clock
                .advance(LEASE_MILLIS - HANDOVER_TIMEOUT_MILLIS);
            service.run_alarms_async().await;
            gate.release();
        };
        let ((status, answer), ()) = join!(send, race);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "failed");
        assert_eq!(
            answer["statusReason"],
            "The recipient's inbox did not answer within 30 s."
        );
    });
    assert_eq!(gate.arrived(), 1, "one call at bob's door");
    assert_eq!(service.messages(&alice)[0]["status"], "failed");
    assert_eq!(jobs_of(&service, "alice"), 0);
    assert!(
        service.messages(&bob).is_empty(),
        "the abandoned call never got in"
    );
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
    service.set_webhook(&alice, HOOK);
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
    service.set_webhook(&alice, HOOK);
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
    service.set_webhook(&alice, HOOK);
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
    service.set_webhook(&alice, HOOK);
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
    // No retry is promised: the job went with the webhook.
    assert!(recorded[0]["nextAttemptAt"].is_null(), "{recorded:?}");
    assert_eq!(
        recorded[0]["error"],
        "The receiver answered HTTP 503. The webhook was removed meanwhile, so it is not retried."
    );
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
    assert_eq!(service.messages(&alice).len(), 1);
}

/// (c) Two deliveries of one message while a webhook delivery holds the
/// object at an await: both run in that gap, one stores, one is a duplicate,
/// and one event is queued.
#[test]
fn two_deliveries_of_one_message_during_a_webhook_delivery_store_it_once() {
    let service = TestService::new();
    let alice = service.signup("alice");
    service.set_webhook(&alice, HOOK);
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
    assert_eq!(service.messages(&alice).len(), 2);
    assert_eq!(service.objects().web().calls_to(HOOK).len(), 2);
    assert_eq!(jobs_of(&service, "alice"), 0);
}
