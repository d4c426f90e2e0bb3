/* The satisfaction follow-up (contract §10): after a supervisor answered an urgent complaint, a `followup` notice
 * asks the traveller whether they are satisfied now. Two big buttons (`followup-yes`, `followup-no`), an optional
 * score 1-5 and comment, one `followup_reply` through the outbox; the notice then says it was sent / received.
 * Answered twice, the server keeps the later answer; the phone asks once. */
import { el, newId } from "./dom.js";
import { t } from "./i18n.js";

export function answerFollowup(inbox, item, satisfied) {
  const draft = item.draft || {};
  const msg = { type: "followup_reply", id: newId("f"), notice_id: item.notice_id, satisfied,
                at: new Date().toISOString() };
  if (draft.score) msg.score = draft.score;
  const comment = (draft.comment || "").trim();
  if (comment) msg.comment = comment.slice(0, 2000);
  Object.assign(item, { satisfied, reply: msg.id, delivered: false, draft: null, read: true });
  inbox.link.send(msg);
  inbox.keep();
}

export function followupBlock(inbox, item) {
  if (item.satisfied === true || item.satisfied === false) {
    return el("div", { cls: "followup answered" }, [
      el("p", { cls: "ok", "data-tp": "followup-answer",
                text: t(item.satisfied ? "followup.said.yes" : "followup.said.no") }),
      el("p", { cls: "status", role: "status", "data-delivered": String(!!item.delivered),
                text: t(item.delivered ? "followup.delivered" : "followup.queued") })]);
  }
  const draft = (item.draft = item.draft || { score: 0, comment: "" });
  const key = item.notice_id.replace(/[^A-Za-z0-9_-]/g, "_");
  const scores = [1, 2, 3, 4, 5].map((n) => el("button", {
    type: "button", cls: "choice", "data-tp": `followup-score-${n}`, "aria-pressed": String(draft.score === n),
    "aria-label": t("rate.stars", { n }), text: String(n) }));
  scores.forEach((button, i) => button.addEventListener("click", () => {
    draft.score = draft.score === i + 1 ? 0 : i + 1;
    scores.forEach((b, j) => b.setAttribute("aria-pressed", String(draft.score === j + 1)));
  }));
  const comment = el("textarea", { id: `fu-c-${key}`, rows: 2, maxlength: 2000 });
  comment.value = draft.comment || "";
  comment.addEventListener("input", () => { draft.comment = comment.value; });
  return el("div", { cls: "followup" }, [
    el("p", { id: `fu-s-${key}`, cls: "label", text: t("followup.score") }),
    el("div", { cls: "scale", role: "group", "aria-labelledby": `fu-s-${key}` }, scores),
    el("label", { cls: "field", for: comment.id }, [el("span", { text: t("followup.comment") })]), comment,
    el("p", { cls: "label", text: t("followup.ask") }),
    el("div", { cls: "check-buttons" }, [
      el("button", { type: "button", cls: "btn huge safe", "data-tp": "followup-yes", text: t("followup.yes"),
                     onclick: () => answerFollowup(inbox, item, true) }),
      el("button", { type: "button", cls: "btn huge help", "data-tp": "followup-no", text: t("followup.no"),
                     onclick: () => answerFollowup(inbox, item, false) })])]);
}
