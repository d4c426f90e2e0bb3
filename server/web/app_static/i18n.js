/* Every visible string in English and Chinese. t(key, vars) fills {name} placeholders; the result is always
 * text (set with textContent), never markup. The language follows the phone's until the person switches. */
const en = {
  "conn.online": "Online", "conn.offline": "Offline", "conn.connecting": "Connecting…", "outbox": "Waiting to send:",
  "lang.other": "中文", "role.traveller": "Traveller", "role.guide": "Guide",
  "rate.title": "How was today?", "rate.day": "Rating for {day}", "rate.score": "Overall",
  "rate.stars": "{n} of 5 stars", "rate.aspects": "Details (optional)", "rate.comment": "Comment (optional)",
  "rate.nps": "How likely are you to recommend this tour to a friend? (0 = not at all, 10 = certainly)",
  "rate.nps.open": "Add a recommendation score", "rate.send": "Send rating", "rate.update": "Change rating",
  "rate.pick": "Choose 1 to 5 stars first.", "rate.queued": "Saved on your phone. It will be sent when there is signal.",
  "rate.sent": "Thank you! Your rating was received.", "rate.mine": "Your rating today: {score} ★",
  "aspect.guide": "Guide", "aspect.transport": "Transport", "aspect.meals": "Meals", "aspect.lodging": "Lodging",
  "aspect.itinerary": "Itinerary",
  "notices.title": "Notices", "notices.empty": "No notices yet.", "notice.read": "Mark as read",
  "notice.isread": "Read ✓",
  "kind.risk_warning": "Warning", "kind.progress": "Update", "kind.prompt": "Reminder", "kind.followup": "Follow-up",
  "kind.info": "Information", "kind.answer": "Answer to your complaint",
  "err.rate_limited": "Sending too fast, retrying…", "err.forbidden": "This link is not for this tour.",
  "err.invalid": "Something in the message was not accepted: {message}", "err.unknown_tour": "This tour is unknown to the server.",
  "err.conflict": "This was already changed by someone else.", "err.not_found": "That item no longer exists.",
  "err.unavailable": "The server cannot store messages right now; retrying…",
  "err.bad_frame": "The app sent a message the server could not read.",
  "err.expired": "Your access has expired. Ask your guide to show the tour's QR code, scan it and tap “Join” again.",
  "err.notoken": "Open the link your guide or tour operator sent you, or scan the tour's QR code.",
  "err.network": "No connection to the server.", "err.join404": "This code no longer works. Ask your guide for the current QR code.",
  "err.join429": "Too many people are joining from this network. Retrying in a minute…",
  "guide.today": "Today at a glance", "guide.mean": "Mean score", "guide.ratings": "Ratings",
  "guide.response": "Response rate", "guide.trend": "Score by day", "guide.updated": "Updated {t}",
  "guide.complaints": "Open complaints", "guide.none": "None", "guide.due": "due in {t}", "guide.overdue": "overdue by {t}",
  "guide.incidents": "Open incidents", "guide.report": "Report an incident", "guide.kind": "Kind",
  "guide.severity": "Severity", "guide.summary": "What happened", "guide.location": "Location",
  "guide.locate": "Use my location", "guide.lat": "Latitude", "guide.lon": "Longitude",
  "guide.locating": "Finding your location…", "guide.located": "Location found",
  "guide.nolocation": "Location unavailable: type it or leave it empty.",
  "guide.affected": "Travellers affected", "guide.needs": "Needs", "guide.send": "Send report",
  "guide.sent": "Report saved; it goes out as soon as there is signal.",
  "guide.alts": "Offer three alternatives", "guide.alt": "Alternative {n}", "guide.alts.send": "Send alternatives",
  "guide.alts.need": "Write all three alternatives first.", "guide.alts.done": "Alternatives sent",
  "guide.countdown": "Time left to offer alternatives: {t}", "guide.countdown.over": "The 10 minutes have passed — send them now.",
  "guide.note": "Note", "guide.note.send": "Add note", "guide.resolve": "Mark resolved", "guide.pending": "not sent yet",
  "guide.resources": "Help dispatched", "guide.capacity": "capacity {n}", "guide.call": "Call {contact}",
  "guide.join": "Join QR for the group", "guide.join.show": "Show QR", "guide.join.new": "New code (old one stops working)",
  "guide.join.confirm": "Issue a new code? The current QR will stop working.", "guide.join.expires": "Valid until {t}",
  "guide.tour": "Tour", "guide.notices": "The tour's notices",
  "kindname.attraction_closed": "Attraction closed", "kindname.vehicle_breakdown": "Vehicle breakdown",
  "kindname.medical": "Medical", "kindname.lost_document": "Lost document", "kindname.accident": "Accident",
  "kindname.delay": "Delay", "kindname.weather": "Weather", "kindname.lodging_problem": "Lodging problem",
  "kindname.conflict": "Conflict", "kindname.complaint": "Complaint", "kindname.other": "Other",
  "kindname.urgent_complaint": "Urgent complaint",
  "sev.low": "Low", "sev.medium": "Medium", "sev.high": "High", "sev.critical": "Critical",
  "need.vehicle": "Vehicle", "need.lodging": "Lodging", "need.medical": "Medical", "need.guide": "Guide",
  "need.interpreter": "Interpreter", "status.open": "open", "status.in_progress": "in progress", "status.resolved": "resolved",
  "join.title": "Join your tour", "join.help": "Tap the button to start rating your days and receiving your guide's notices.",
  "join.name": "Your name (optional)", "join.button": "Join", "join.busy": "Joining…",
  "choice.pick": "Your choice (tap one; you can change it):", "choice.queued": "Your choice: {choice}. Waiting to send…",
  "choice.delivered": "Your choice: {choice}. Received ✓",
  "check.title": "Safety check: are you safe?", "check.left": "Please answer within {t}",
  "check.over": "The deadline has passed. Please answer anyway: it still counts.",
  "check.safe": "I'm safe", "check.help": "I need help", "check.note": "Add a note (optional): where you are, what you need",
  "check.locating": "Finding your location… your answer goes out in a few seconds.",
  "check.said.safe": "You answered: I'm safe", "check.said.help": "You answered: I need help. Help is being arranged.",
  "check.queued": "Saved on your phone; it will be sent as soon as there is signal.", "check.delivered": "Received ✓",
  "check.located": "Your location was sent with it.", "check.nolocation": "Your location could not be added.",
  "check.change": "Change my answer",
  "rollup.title": "Safety check: tour {tour}", "rollup.loading": "Loading the answers…",
  "rollup.offline": "Offline: the answers show when there is signal.", "rollup.safe": "Safe",
  "rollup.need_help": "Needs help", "rollup.unanswered": "No answer", "rollup.unknown": "Never joined",
  "rollup.helpnames": "Need help", "rollup.waiting": "Not answered yet (answer for them if they are with you)",
  "rollup.sent": "Answered by you: {status}", "rollup.forsafe": "{name} is safe", "rollup.forhelp": "{name} needs help",
  "msg.rating": "rating", "msg.incident": "incident report", "msg.incident_update": "incident update",
  "msg.notice_read": "read receipt", "msg.notice_reply": "choice", "msg.safety_reply": "safety answer",
  "msg.followup_reply": "follow-up answer",
  "followup.ask": "Are you satisfied with how your complaint was handled?", "followup.yes": "Yes, satisfied",
  "followup.no": "No, not satisfied", "followup.score": "Your score now (optional)",
  "followup.comment": "Anything to add? (optional)", "followup.said.yes": "You answered: satisfied. Thank you!",
  "followup.said.no": "You answered: not satisfied. We will look at it again and contact you.",
  "followup.queued": "Saved on your phone; it will be sent as soon as there is signal.", "followup.delivered": "Received ✓",
};
const zh = {
  "conn.online": "在线", "conn.offline": "离线", "conn.connecting": "连接中…", "outbox": "待发送：",
  "lang.other": "English", "role.traveller": "游客", "role.guide": "导游",
  "rate.title": "今天的行程怎么样？", "rate.day": "{day} 的评价", "rate.score": "总体评分",
  "rate.stars": "{n} 星（满分 5 星）", "rate.aspects": "分项评分（可选）", "rate.comment": "留言（可选）",
  "rate.nps": "您有多大可能向朋友推荐这个行程？（0 = 完全不会，10 = 一定会）",
  "rate.nps.open": "添加推荐评分", "rate.send": "提交评价", "rate.update": "修改评价",
  "rate.pick": "请先选择 1 到 5 星。", "rate.queued": "已保存在手机上，有信号时会自动发送。",
  "rate.sent": "谢谢！您的评价已收到。", "rate.mine": "您今天的评分：{score} ★",
  "aspect.guide": "导游", "aspect.transport": "交通", "aspect.meals": "餐饮", "aspect.lodging": "住宿",
  "aspect.itinerary": "行程安排",
  "notices.title": "通知", "notices.empty": "暂无通知。", "notice.read": "标记为已读", "notice.isread": "已读 ✓",
  "kind.risk_warning": "风险提示", "kind.progress": "进展", "kind.prompt": "提醒", "kind.followup": "回访",
  "kind.info": "信息", "kind.answer": "投诉答复",
  "err.rate_limited": "发送太快，正在重试…", "err.forbidden": "此链接不属于这个行程。",
  "err.invalid": "消息有内容未被接受：{message}", "err.unknown_tour": "服务器不认识这个行程。",
  "err.conflict": "此项已被他人修改。", "err.not_found": "该项目已不存在。",
  "err.unavailable": "服务器暂时无法保存消息，正在重试…", "err.bad_frame": "服务器无法读取应用发送的消息。",
  "err.expired": "您的访问已过期。请让导游出示本团二维码，扫码后再点一次“加入”。",
  "err.notoken": "请打开导游或旅行社发给您的链接，或扫描本团二维码。",
  "err.network": "无法连接服务器。", "err.join404": "此二维码已失效，请向导游索取最新二维码。",
  "err.join429": "此网络下加入的人太多，一分钟后自动重试…",
  "guide.today": "今日概览", "guide.mean": "平均分", "guide.ratings": "评价数", "guide.response": "回复率",
  "guide.trend": "每日评分", "guide.updated": "更新于 {t}", "guide.complaints": "未处理投诉", "guide.none": "无",
  "guide.due": "剩余 {t}", "guide.overdue": "已超时 {t}", "guide.incidents": "未结事件", "guide.report": "上报事件",
  "guide.kind": "类型", "guide.severity": "严重程度", "guide.summary": "发生了什么", "guide.location": "位置",
  "guide.locate": "使用我的位置", "guide.lat": "纬度", "guide.lon": "经度", "guide.locating": "正在定位…",
  "guide.located": "已获取位置", "guide.nolocation": "无法定位：请手动填写或留空。",
  "guide.affected": "受影响游客人数", "guide.needs": "需要", "guide.send": "发送上报",
  "guide.sent": "已保存，有信号时立即发出。", "guide.alts": "提供三个替代方案", "guide.alt": "替代方案 {n}",
  "guide.alts.send": "发送替代方案", "guide.alts.need": "请先填写全部三个替代方案。", "guide.alts.done": "替代方案已发送",
  "guide.countdown": "提供替代方案剩余时间：{t}", "guide.countdown.over": "10 分钟已过——请立即发送。",
  "guide.note": "备注", "guide.note.send": "添加备注", "guide.resolve": "标记为已解决", "guide.pending": "尚未发出",
  "guide.resources": "已派遣的援助", "guide.capacity": "容量 {n}", "guide.call": "致电 {contact}",
  "guide.join": "团队加入二维码", "guide.join.show": "显示二维码", "guide.join.new": "生成新码（旧码失效）",
  "guide.join.confirm": "生成新码？当前二维码将失效。", "guide.join.expires": "有效期至 {t}",
  "guide.tour": "行程", "guide.notices": "本团通知",
  "kindname.attraction_closed": "景点关闭", "kindname.vehicle_breakdown": "车辆故障", "kindname.medical": "医疗",
  "kindname.lost_document": "证件遗失", "kindname.accident": "事故", "kindname.delay": "延误",
  "kindname.weather": "天气", "kindname.lodging_problem": "住宿问题", "kindname.conflict": "冲突",
  "kindname.complaint": "投诉", "kindname.other": "其他", "kindname.urgent_complaint": "紧急投诉",
  "sev.low": "低", "sev.medium": "中", "sev.high": "高", "sev.critical": "危急",
  "need.vehicle": "车辆", "need.lodging": "住宿", "need.medical": "医疗", "need.guide": "导游",
  "need.interpreter": "翻译", "status.open": "未处理", "status.in_progress": "处理中", "status.resolved": "已解决",
  "join.title": "加入您的行程", "join.help": "点击按钮即可开始每日评价并接收导游的通知。",
  "join.name": "您的称呼（可选）", "join.button": "加入", "join.busy": "正在加入…",
  "choice.pick": "请选择（点一项，可更改）：", "choice.queued": "您的选择：{choice}。等待发送…",
  "choice.delivered": "您的选择：{choice}。已收到 ✓",
  "check.title": "安全确认：您安全吗？", "check.left": "请在 {t} 内回复",
  "check.over": "回复时限已过，请仍然回复：您的回复依然有效。",
  "check.safe": "我很安全", "check.help": "我需要帮助", "check.note": "补充说明（可选）：您在哪里、需要什么",
  "check.locating": "正在获取您的位置……几秒钟后发出回复。",
  "check.said.safe": "您的回复：我很安全", "check.said.help": "您的回复：我需要帮助。我们正在安排救助。",
  "check.queued": "已保存在手机上，有信号时立即发出。", "check.delivered": "已收到 ✓",
  "check.located": "已附上您的位置。", "check.nolocation": "无法附上您的位置。",
  "check.change": "更改我的回复",
  "rollup.title": "安全确认：行程 {tour}", "rollup.loading": "正在读取回复…",
  "rollup.offline": "离线：有信号时显示回复。", "rollup.safe": "安全",
  "rollup.need_help": "需要帮助", "rollup.unanswered": "未回复", "rollup.unknown": "未加入",
  "rollup.helpnames": "需要帮助", "rollup.waiting": "尚未回复（如在您身边，可代为回复）",
  "rollup.sent": "已由您代为回复：{status}", "rollup.forsafe": "{name} 安全", "rollup.forhelp": "{name} 需要帮助",
  "msg.rating": "评价", "msg.incident": "事件上报", "msg.incident_update": "事件更新",
  "msg.notice_read": "已读回执", "msg.notice_reply": "选择", "msg.safety_reply": "安全回复",
  "msg.followup_reply": "回访答复",
  "followup.ask": "您对投诉的处理结果满意吗？", "followup.yes": "满意", "followup.no": "不满意",
  "followup.score": "您现在的评分（可选）", "followup.comment": "还有什么要补充的吗？（可选）",
  "followup.said.yes": "您的回复：满意。谢谢！", "followup.said.no": "您的回复：不满意。我们会重新处理并与您联系。",
  "followup.queued": "已保存在手机上，有信号时立即发出。", "followup.delivered": "已收到 ✓",
};
const dicts = { en, zh };
let current = pick();

function pick() {
  const saved = localStorage.getItem("tp.lang");
  if (saved === "en" || saved === "zh") return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function lang() { return current; }

export function setLang(code) {
  current = code === "zh" ? "zh" : "en";
  localStorage.setItem("tp.lang", current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}

export function t(key, vars) {
  const text = dicts[current][key] ?? en[key] ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m)) : text;
}

/* "1:05" or "2 h 05 min": a countdown in words a glance can read */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return current === "zh" ? `${h} 小时 ${m} 分` : `${h} h ${String(m).padStart(2, "0")} min`;
}

setLang(current);
