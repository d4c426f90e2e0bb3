/* tourpulse board: every visible string, in English and Chinese.
 *
 * TP.i18n.t(key, vars) looks a key up in the current language (falling back to English, then to the key itself)
 * and fills {name} placeholders from vars. TP.i18n.apply(root) sets the textContent of every [data-i18n] element
 * and the placeholder / aria-label / title of [data-i18n-placeholder] / [data-i18n-label] / [data-i18n-title].
 * Nothing here touches innerHTML: translations are text, never markup.
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});

  const en = {
    "app.title": "Supervisor board",
    "app.name": "tourpulse",
    "conn.connecting": "Connecting…",
    "conn.online": "Live",
    "conn.offline": "Offline",
    "banner.offline": "Offline — reconnecting in {n}s",
    "banner.now": "Offline — reconnecting now…",
    "lang.toggle": "中文",
    "lang.label": "Switch to Chinese",
    "sound.on": "Sound on",
    "sound.off": "Muted",
    "sound.label": "Sound for critical alerts",
    "signout": "Sign out",
    "whoami": "{sub} · regions: {regions}",
    "regions.all": "all",
    "login.title": "Sign in to the board",
    "login.help": "Paste the supervisor token printed by “tourpulse serve”.",
    "login.token": "Token",
    "login.submit": "Open board",
    "login.rejected": "The server refused this token. Paste a valid supervisor token.",
    "section.alerts": "Alerts",
    "section.tours": "Tours in progress",
    "section.pool": "Emergency pool",
    "filter.region": "Region",
    "filter.severity": "Severity",
    "filter.kind": "Kind",
    "filter.all": "All",
    "alerts.empty": "No open alerts.",
    "alerts.count": "{n} active",
    "alerts.hidden": "{n} hidden by filters",
    "alert.tour": "Tour",
    "alert.region": "Region",
    "alert.age": "Open for",
    "alert.count": "Count",
    "alert.level": "Escalation",
    "alert.assignee": "Assignee",
    "alert.unassigned": "unassigned",
    "alert.updated": "updated {t} ago",
    "action.ack": "Acknowledge",
    "action.assign": "Assign",
    "action.resolve": "Resolve",
    "placeholder.assignee": "Assign to…",
    "placeholder.note": "Resolution note",
    "toast.ok": "{action}: done",
    "toast.error": "{action} failed — {reason}",
    "toast.offline": "Not connected: try again when the board is live.",
    "toast.need_assignee": "Type who to assign it to first.",
    "toast.timeout": "{action}: no answer from the server yet.",
    "toast.http": "Could not load {what} ({status}).",
    "toast.forbidden": "The server refused access to {what} for this token.",
    "toast.dismiss": "Dismiss",
    "what.tours": "tours",
    "what.pool": "the pool",
    "error.bad_frame": "the message was not understood",
    "error.invalid": "invalid input",
    "error.forbidden": "outside your regions",
    "error.unknown_tour": "unknown tour",
    "error.not_found": "no such alert",
    "error.conflict": "not allowed in its current state",
    "error.rate_limited": "too many actions — slow down",
    "error.unavailable": "storage unavailable — retry shortly",
    "error.field": "field: {field}",
    "tours.empty": "No tours in progress.",
    "tours.col.tour": "Tour",
    "tours.col.region": "Region",
    "tours.col.today": "Today",
    "tours.col.trend": "Trend",
    "tours.col.response": "Response",
    "tours.col.incidents": "Open incidents",
    "tours.col.resources": "Resources",
    "tours.col.alerts": "Alerts",
    "tours.ratings": "{n} ratings",
    "tours.travellers": "{n} travellers",
    "tours.updated": "Updated {time}",
    "trend.day": "{day}: {mean} ({count})",
    "deadline.in": "due in {t}",
    "deadline.over": "overdue {t}",
    "deadline.none": "no deadline",
    "clock.solution": "Solution (2 h)",
    "clock.followup": "Follow-up (24 h)",
    "clock.response": "Answer (48 h)",
    "pool.empty": "No resources in your regions.",
    "pool.summary": "{free} free · {held} held · {dispatched} dispatched",
    "pool.col.resource": "Resource",
    "pool.col.kind": "Kind",
    "pool.col.region": "Region",
    "pool.col.capacity": "Capacity",
    "pool.col.partner": "Partner",
    "pool.col.contact": "Contact",
    "pool.col.state": "State",
    "pool.col.held_by": "Held by",
    "state.free": "free",
    "state.held": "held",
    "state.dispatched": "dispatched",
    "status.open": "open",
    "status.acknowledged": "acknowledged",
    "status.resolved": "resolved",
    "severity.low": "low",
    "severity.medium": "medium",
    "severity.high": "high",
    "severity.critical": "critical",
    "level": "L{n}",
    "times": "×{n}",
    "unit.d": "d",
    "unit.h": "h",
    "unit.m": "m",
    "unit.s": "s",
    "unit.sep": " ",
    "kind.score_below_threshold": "Low day score",
    "kind.score_drop": "Score drop",
    "kind.urgent_complaint": "Urgent complaint",
    "kind.incident": "Incident",
    "kind.sla_breach": "Deadline missed",
    "kind.pool_exhausted": "Pool exhausted",
    "kind.category_share": "Complaint category share",
    "incident.attraction_closed": "Attraction closed",
    "incident.vehicle_breakdown": "Vehicle breakdown",
    "incident.medical": "Medical",
    "incident.lost_document": "Lost document",
    "incident.accident": "Accident",
    "incident.delay": "Delay",
    "incident.weather": "Weather",
    "incident.lodging_problem": "Lodging problem",
    "incident.conflict": "Conflict",
    "incident.complaint": "Complaint",
    "incident.other": "Other",
    "resource.vehicle": "Vehicle",
    "resource.lodging": "Lodging",
    "resource.medical": "Medical",
    "resource.guide": "Guide",
    "resource.interpreter": "Interpreter",
  };

  const zh = {
    "app.title": "值班主管看板",
    "app.name": "tourpulse",
    "conn.connecting": "连接中…",
    "conn.online": "实时",
    "conn.offline": "离线",
    "banner.offline": "离线 — {n} 秒后重新连接",
    "banner.now": "离线 — 正在重新连接…",
    "lang.toggle": "English",
    "lang.label": "切换到英文",
    "sound.on": "声音开",
    "sound.off": "已静音",
    "sound.label": "紧急告警提示音",
    "signout": "退出",
    "whoami": "{sub} · 区域：{regions}",
    "regions.all": "全部",
    "login.title": "登录看板",
    "login.help": "粘贴 “tourpulse serve” 输出的主管令牌。",
    "login.token": "令牌",
    "login.submit": "打开看板",
    "login.rejected": "服务器拒绝了此令牌，请粘贴有效的主管令牌。",
    "section.alerts": "告警",
    "section.tours": "进行中的团",
    "section.pool": "应急资源池",
    "filter.region": "区域",
    "filter.severity": "严重程度",
    "filter.kind": "类型",
    "filter.all": "全部",
    "alerts.empty": "没有待处理的告警。",
    "alerts.count": "{n} 条待处理",
    "alerts.hidden": "{n} 条被筛选隐藏",
    "alert.tour": "团",
    "alert.region": "区域",
    "alert.age": "已持续",
    "alert.count": "次数",
    "alert.level": "升级",
    "alert.assignee": "负责人",
    "alert.unassigned": "未分配",
    "alert.updated": "{t}前更新",
    "action.ack": "确认",
    "action.assign": "分配",
    "action.resolve": "解决",
    "placeholder.assignee": "分配给…",
    "placeholder.note": "处理说明",
    "toast.ok": "{action}：已完成",
    "toast.error": "{action}失败 — {reason}",
    "toast.offline": "未连接：请在看板恢复实时后重试。",
    "toast.need_assignee": "请先填写负责人。",
    "toast.timeout": "{action}：服务器暂未应答。",
    "toast.http": "无法加载{what}（{status}）。",
    "toast.forbidden": "服务器拒绝此令牌访问{what}。",
    "toast.dismiss": "关闭",
    "what.tours": "团信息",
    "what.pool": "资源池",
    "error.bad_frame": "消息无法识别",
    "error.invalid": "输入无效",
    "error.forbidden": "超出您的区域",
    "error.unknown_tour": "未知的团",
    "error.not_found": "告警不存在",
    "error.conflict": "当前状态不允许此操作",
    "error.rate_limited": "操作过于频繁，请稍慢",
    "error.unavailable": "存储暂不可用，请稍后重试",
    "error.field": "字段：{field}",
    "tours.empty": "暂无进行中的团。",
    "tours.col.tour": "团",
    "tours.col.region": "区域",
    "tours.col.today": "今日评分",
    "tours.col.trend": "趋势",
    "tours.col.response": "回复率",
    "tours.col.incidents": "未结事件",
    "tours.col.resources": "调度资源",
    "tours.col.alerts": "告警",
    "tours.ratings": "{n} 条评分",
    "tours.travellers": "{n} 位游客",
    "tours.updated": "更新于 {time}",
    "trend.day": "{day}：{mean}（{count}）",
    "deadline.in": "剩余 {t}",
    "deadline.over": "已超时 {t}",
    "deadline.none": "无时限",
    "clock.solution": "解决（2 小时）",
    "clock.followup": "回访（24 小时）",
    "clock.response": "答复（48 小时）",
    "pool.empty": "您的区域暂无资源。",
    "pool.summary": "空闲 {free} · 占用 {held} · 已调度 {dispatched}",
    "pool.col.resource": "资源",
    "pool.col.kind": "类型",
    "pool.col.region": "区域",
    "pool.col.capacity": "容量",
    "pool.col.partner": "合作方",
    "pool.col.contact": "联系方式",
    "pool.col.state": "状态",
    "pool.col.held_by": "占用事件",
    "state.free": "空闲",
    "state.held": "占用",
    "state.dispatched": "已调度",
    "status.open": "未处理",
    "status.acknowledged": "已确认",
    "status.resolved": "已解决",
    "severity.low": "低",
    "severity.medium": "中",
    "severity.high": "高",
    "severity.critical": "紧急",
    "level": "{n}级",
    "times": "×{n}",
    "unit.d": "天",
    "unit.h": "小时",
    "unit.m": "分",
    "unit.s": "秒",
    "unit.sep": "",
    "kind.score_below_threshold": "当日评分过低",
    "kind.score_drop": "评分下降",
    "kind.urgent_complaint": "紧急投诉",
    "kind.incident": "突发事件",
    "kind.sla_breach": "处理超时",
    "kind.pool_exhausted": "资源池耗尽",
    "kind.category_share": "投诉类别占比过高",
    "incident.attraction_closed": "景点关闭",
    "incident.vehicle_breakdown": "车辆故障",
    "incident.medical": "医疗",
    "incident.lost_document": "证件遗失",
    "incident.accident": "事故",
    "incident.delay": "延误",
    "incident.weather": "天气",
    "incident.lodging_problem": "住宿问题",
    "incident.conflict": "冲突",
    "incident.complaint": "投诉",
    "incident.other": "其他",
    "resource.vehicle": "车辆",
    "resource.lodging": "住宿",
    "resource.medical": "医疗",
    "resource.guide": "导游",
    "resource.interpreter": "翻译",
  };

  const DICTS = { en: en, zh: zh };
  const STORE_KEY = "tourpulse.lang";

  function initialLang() {
    try {
      const saved = window.localStorage.getItem(STORE_KEY);
      if (saved && DICTS[saved]) return saved;
    } catch (_) { /* storage may be disabled */ }
    const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    return String(langs[0] || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  let lang = initialLang();

  function t(key, vars) {
    let text = DICTS[lang][key];
    if (text === undefined) text = en[key];
    if (text === undefined) return key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, function (whole, name) {
        return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
      });
    }
    return text;
  }

  /* A label for a value from the data (alert kind, severity…): the translation if known, else the raw value. */
  function label(prefix, value) {
    if (value === null || value === undefined || value === "") return "—";
    const key = prefix + "." + value;
    return DICTS[lang][key] !== undefined || en[key] !== undefined ? t(key) : String(value);
  }

  function apply(root) {
    const scope = root || document;
    scope.querySelectorAll("[data-i18n]").forEach(function (node) { node.textContent = t(node.dataset.i18n); });
    scope.querySelectorAll("[data-i18n-placeholder]").forEach(function (node) {
      node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
    });
    scope.querySelectorAll("[data-i18n-label]").forEach(function (node) {
      node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    });
    scope.querySelectorAll("[data-i18n-title]").forEach(function (node) {
      node.setAttribute("title", t(node.dataset.i18nTitle));
    });
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("app.name") + " — " + t("app.title");
  }

  function setLang(next) {
    if (!DICTS[next]) return;
    lang = next;
    try { window.localStorage.setItem(STORE_KEY, next); } catch (_) { /* ignore */ }
  }

  TP.i18n = {
    t: t,
    label: label,
    apply: apply,
    setLang: setLang,
    lang: function () { return lang; },
    languages: Object.keys(DICTS),
    dictionaries: DICTS,
  };
})();
