/* The traveller's screen: rate today (stars, five aspects, comment, NPS on the last day or when asked), see and
 * change today's rating, and the notices inbox. Works offline: a rating goes to the outbox first. */
import { el, clear, newId, dayIn, load, save, showError } from "./dom.js";
import { t } from "./i18n.js";

const ASPECTS = ["guide", "transport", "meals", "lodging", "itinerary"];

export class TravellerScreen {
  constructor({ claims, link, inbox, checks, tour }) {
    Object.assign(this, { claims, link, inbox, checks, tour });
    this.tourId = claims.tours[0];
    this.form = { score: 0, aspects: {}, nps: null };
    this.askNps = false;
  }

  day() { return dayIn(this.tour && this.tour.timezone); }
  mineKey() { return `tp.mine.${this.tourId}.${this.day()}`; }

  render(root) {
    const mine = load(this.mineKey(), null);
    // drawn again (tour details arrived, language switched): keep what the person has picked or typed so far
    const typed = this.comment ? this.comment.value : null;
    if (mine && !this.touched) this.form = { score: mine.score, aspects: { ...(mine.aspects || {}) }, nps: mine.nps ?? null };
    const lastDay = this.tour && this.tour.end === this.day();
    this.status = el("p", { cls: "status", role: "status", "aria-live": "polite" });
    this.mineLine = el("p", { cls: "mine", text: mine ? t("rate.mine", { score: mine.score }) : "" });
    this.comment = el("textarea", { "data-tp": "comment", id: "comment", rows: 3, maxlength: 2000 });
    this.comment.value = typed !== null ? typed : (mine && mine.comment) || "";
    this.npsBox = el("div", { cls: "nps-box" });
    this.renderNps(lastDay || this.askNps || (mine && mine.nps !== undefined && mine.nps !== null));
    clear(root).append(
      this.checks.view(),
      el("section", { cls: "card rate", "aria-labelledby": "rate-h" }, [
        el("h2", { id: "rate-h", text: t("rate.title") }),
        el("p", { cls: "muted", text: t("rate.day", { day: this.day() }) }),
        this.mineLine,
        this.scale("score", t("rate.score"), 1, 5, "score", this.form.score, (n) => { this.form.score = n; }, "stars"),
        el("div", { cls: "aspects" }, [
          el("h3", { text: t("rate.aspects") }),
          ...ASPECTS.map((name) => this.scale(`aspect-${name}`, t(`aspect.${name}`), 1, 5, `aspect-${name}`,
            this.form.aspects[name] || 0, (n) => { this.form.aspects[name] = n; }, "small")),
        ]),
        el("label", { cls: "field", for: "comment" }, [el("span", { text: t("rate.comment") })]),
        this.comment,
        this.npsBox,
        el("button", { type: "button", cls: "btn primary big", "data-tp": "send-rating",
                       text: t(mine ? "rate.update" : "rate.send"), onclick: () => this.send() }),
        this.status,
      ]),
      this.inbox.view(),
    );
  }

  renderNps(open) {
    clear(this.npsBox);
    if (!open) {
      this.npsBox.append(el("button", { type: "button", cls: "btn link", text: t("rate.nps.open"),
                                        onclick: () => { this.askNps = true; this.renderNps(true); } }));
      return;
    }
    this.npsBox.append(this.scale("nps", t("rate.nps"), 0, 10, "nps", this.form.nps, (n) => { this.form.nps = n; },
                                  "nps"));
  }

  /* a row of toggle buttons (radio-like), one per value, each with its data-tp hook */
  scale(id, label, from, to, hook, value, onPick, style) {
    const buttons = [];
    const row = el("div", { cls: `scale ${style}`, role: "group", "aria-labelledby": `${id}-l` });
    for (let n = from; n <= to; n++) {
      const name = style === "stars" ? t("rate.stars", { n }) : `${label}: ${n}`;
      const button = el("button", { type: "button", cls: "choice", "data-tp": `${hook}-${n}`, "aria-label": name,
                                    "aria-pressed": String(n === value), text: style === "stars" ? "★" : String(n) });
      button.addEventListener("click", () => {
        this.touched = true;
        onPick(n);
        buttons.forEach((b, i) => {
          const v = from + i;
          b.setAttribute("aria-pressed", String(v === n));
          if (style === "stars") b.classList.toggle("lit", v <= n);
        });
      });
      if (style === "stars" && value && n <= value) button.classList.add("lit");
      buttons.push(button);
      row.append(button);
    }
    return el("div", { cls: "scale-wrap" }, [el("p", { id: `${id}-l`, cls: "label", text: label }), row]);
  }

  send() {
    if (!this.form.score) { this.status.textContent = t("rate.pick"); return; }
    const msg = { type: "rating", id: newId("rt"), tour_id: this.tourId, day: this.day(), score: this.form.score,
                  at: new Date().toISOString() };
    const aspects = Object.fromEntries(Object.entries(this.form.aspects).filter(([, v]) => v >= 1));
    if (Object.keys(aspects).length) msg.aspects = aspects;
    const comment = this.comment.value.trim();
    if (comment) msg.comment = comment;
    if (this.form.nps !== null && this.form.nps !== undefined) msg.nps = this.form.nps;
    save(this.mineKey(), { score: msg.score, aspects, comment, nps: msg.nps ?? null, id: msg.id });
    this.touched = false;
    this.link.send(msg);
    this.mineLine.textContent = t("rate.mine", { score: msg.score });
    this.status.textContent = t("rate.queued");
    showError("");
  }

  acked(entry) {
    if (entry.msg.type === "rating" && this.status) this.status.textContent = t("rate.sent");
  }

  pushed(frame) {
    if (frame.type === "notice" && frame.ask_nps && !this.askNps) { this.askNps = true; this.renderNps(true); }
  }
}
