"""The collector's i18n catalog: every message a user can see, Simplified Chinese first, then English.

Error answers carry both (`message` = "中文 / English"); the dashboard picks one by `?lang=`.
"""
from __future__ import annotations

from fastapi.responses import JSONResponse

from qmbase.refusal import Refusal

ERRORS: dict[str, tuple[str, str]] = {
    "token_missing": ("请求缺少令牌。请在站点配置 [upload] token 中填写 add-station 给出的令牌。",
                      "The request carries no token. Put the token from add-station in the station's [upload] token."),
    "token_unknown": ("令牌无效或已被替换。请向区县信息中心重新领取本站点的令牌。",
                      "The token is not valid or was replaced. Ask the district information center for this station's token."),
    "admin_required": ("需要区县管理令牌。请用 admin-token 给出的令牌登录。",
                       "The district admin token is needed. Log in with the token from admin-token."),
    "wrong_station": ("此令牌属于另一个站点，不能访问该站点的数据。请检查站点编号和令牌是否配对。",
                      "This token belongs to another station and cannot touch this station's data. Check that station id and token match."),
    "tus_version": ("客户端的 tus 协议版本不受支持（需要 1.0.0）。请更新站点软件。",
                    "The client's tus version is not supported (1.0.0 is needed). Update the station software."),
    "bad_offset": ("Upload-Offset 缺失或不是非负十进制整数（只允许 ASCII 数字 0-9）。请先查询进度（HEAD）再续传。",
                   "Upload-Offset is missing or not a non-negative decimal integer (ASCII digits 0-9 only). Ask for the offset (HEAD) and resume from there."),
    "too_many_open": ("本站点未完成的上传已达上限 {limit} 个，未创建新的上传。请先续传或删除（DELETE）未完成的上传，或联系区县信息中心。",
                      "This station already has {limit} unfinished uploads, the limit; no new one was created. Finish or delete (DELETE) unfinished uploads first, or contact the district information center."),
    "bad_length": ("Upload-Length 缺失或不是非负十进制整数（只允许 ASCII 数字 0-9；不支持 Upload-Defer-Length）。请更新站点软件后重试。",
                   "Upload-Length is missing or not a non-negative decimal integer (ASCII digits 0-9 only; Upload-Defer-Length is not supported). Update the station software and retry."),
    "too_large": ("文件大小 {length} 字节超过汇集服务器上限 {limit} 字节，未接收。请联系区县信息中心调整上限。",
                  "The file of {length} bytes is over the collector's limit of {limit} bytes and was not accepted. Ask the district information center to raise the limit."),
    "bad_metadata": ("上传元数据有误：{detail}。请更新站点软件后重试。",
                     "The upload metadata is wrong: {detail}. Update the station software and retry."),
    "bad_path": ("文件路径“{path}”不合规（不能是绝对路径，不能含 ..、反斜杠、空段或 Windows 不允许的文件名）。未接收任何数据。",
                 "The file path '{path}' is not allowed (no absolute path, '..', backslash, empty segment or name Windows forbids). Nothing was stored."),
    "path_taken": ("该场次下“{path}”已存有内容不同的文件，已封存的数据不会被覆盖。请联系区县信息中心。",
                   "A different file is already stored as '{path}' in this sitting; sealed data is never overwritten. Contact the district information center."),
    "not_found": ("没有这个上传（可能已被丢弃）。请重新创建上传。",
                  "There is no such upload (it may have been discarded). Create the upload again."),
    "gone": ("这个上传已被丢弃。请重新创建上传并重新发送文件。",
             "This upload was discarded. Create a new upload and send the file again."),
    "bad_content_type": ("PATCH 的 Content-Type 必须是 application/offset+octet-stream。请更新站点软件。",
                         "A PATCH must have Content-Type application/offset+octet-stream. Update the station software."),
    "offset_mismatch": ("续传位置不一致：服务器已有 {offset} 字节，请求从 {claimed} 开始。请先查询进度（HEAD）再续传。",
                        "The resume offset does not match: the server has {offset} bytes, the request starts at {claimed}. Ask for the offset (HEAD) and resume from there."),
    "busy": ("这个上传正在被另一个请求写入。请稍后查询进度再续传。",
             "Another request is writing this upload. Ask for the offset a little later and resume."),
    "past_length": ("发送的数据超过了文件声明的长度，这一段未保存。请查询进度后重发。",
                    "More data was sent than the file's declared length; this chunk was not kept. Ask for the offset and resend."),
    "bad_checksum_header": ("Upload-Checksum 格式不对或算法不支持（应为“算法 base64摘要”，支持的算法：{accepted}）。",
                            "Upload-Checksum is malformed or its algorithm is not supported (it is 'algorithm base64-digest'; accepted algorithms: {accepted})."),
    "checksum_mismatch": ("这一段数据的校验和不符，已丢弃这一段，进度不变。请重发这一段。",
                          "This chunk's checksum does not match; the chunk was dropped and the offset is unchanged. Send the chunk again."),
    "sha256_mismatch": ("文件传完后 SHA-256 与清单不符，已丢弃，未作为有效数据保存。请重新创建上传并重新发送文件。",
                        "The finished file's SHA-256 does not match the manifest; it was discarded and not stored as good. Create a new upload and send the file again."),
    "disk_full": ("汇集服务器磁盘空间不足，这一段未保存，已收数据不受影响。请联系区县信息中心清理磁盘后重试。",
                  "The collector's disk is full; this chunk was not kept and data already received is safe. Ask the district information center to free disk space, then retry."),
    "storage_failed": ("文件已收齐但写入存储失败，暂未标记为完成。稍后重试将再次保存。",
                       "The file arrived but saving it to storage failed; it is not marked done. Retrying later saves it again."),
    "index_unavailable": ("汇集服务器暂时连不上它的数据库，这个请求未处理，已收数据不受影响。请稍后重试（工作站会自动重试）。",
                          "The collector cannot reach its database just now; this request was not handled and data already received is safe. Retry in a moment (stations retry by themselves)."),
    "already_stored": ("该文件已校验并保存，不能撤回。",
                       "This file was verified and stored; it cannot be withdrawn."),
    "signature_bad": ("清单签名不对，未保存。请确认站点的 [upload] token 是区县最新给出的令牌，然后重试上传。",
                      "The manifest's signature is wrong; nothing was stored. Check that the station's [upload] token is the one the district issued last, then retry the upload."),
    "manifest_not_canonical": ("清单不是标准格式（{detail}），未保存：封存后被改动过。请联系区县信息中心。",
                               "The manifest is not in canonical form ({detail}); nothing was stored: it was changed after sealing. Contact the district information center."),
    "manifest_bad": ("清单内容不合规（{detail}），未保存。请更新站点软件或联系区县信息中心。",
                     "The manifest is not valid ({detail}); nothing was stored. Update the station software or contact the district information center."),
    "bad_json": ("请求内容不是有效的 JSON 对象：{detail}。",
                 "The request body is not a valid JSON object: {detail}."),
    "body_timeout": ("请求内容发送太慢，连接已关闭。请检查网络后重试。",
                     "The request body came too slowly; the connection was closed. Check the network and retry."),
    "bad_precheck": ("设备检查结果格式不对：{detail}。请更新站点软件。",
                     "The pre-check result is malformed: {detail}. Update the station software."),
    "bad_incident": ("应急事件内容有误（字段 {detail}）。请更新站点软件后重新提交。",
                     "The incident is malformed (field {detail}). Update the station software and file it again."),
    "no_incident": ("没有这条应急事件。请刷新看板。", "There is no such incident. Reload the dashboard."),
    "json_required": ("请求须为 JSON。请从看板页面操作。", "The request must be JSON. Use the dashboard page."),
    "wrong_origin": ("请求不是来自本看板页面，已拒绝。请在看板页面上操作。",
                     "The request did not come from this dashboard's page and was refused. Use the dashboard page."),
    "bad_station_id": ("站点编号“{station}”不合规：只能用字母、数字、_ . -，最长 64 个字符。",
                       "The station id '{station}' is not allowed: letters, digits, _ . - only, at most 64 characters."),
    "pairing_refused": ("配对码不正确、已过期或已经用过。请在区县看板上为本站点重新生成配对码。",
                        "The pairing code is wrong, expired or already used. Make a new one for this station on the district dashboard."),
    "pairing_rate": ("配对码输错次数太多，请 {seconds} 秒后再试。",
                     "Too many wrong pairing codes; try again in {seconds} s."),
    "login_failed": ("管理令牌不正确，请重新输入。",
                     "The admin token is not correct; enter it again."),
}


def message(code: str, **fields) -> tuple[str, str]:
    zh, en = ERRORS[code]
    return zh.format(**fields), en.format(**fields)


class CollectorError(Refusal):
    """An answer to the client that is an error: status, code from the catalog, extra headers.

    The collector's JSON keeps its own shape (``message``, ``message_zh``, ``message_en``),
    which stations and foreign tus clients read."""

    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None, **fields):
        super().__init__(*message(code, **fields), code=code, status=status)
        self.headers = headers or {}
        self.extra = extra or {}
        self.fields = fields

    def body_fields(self) -> dict[str, str]:
        return {"message": f"{self.zh} / {self.en}", "message_zh": self.zh, "message_en": self.en}

    def response(self) -> JSONResponse:
        body = {"error": self.code, **self.body_fields(), **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# Dashboard text: key -> (zh, en).
UI: dict[str, tuple[str, str]] = {
    "title": ("区县汇集看板", "District collector dashboard"),
    "login_title": ("登录区县汇集看板", "Log in to the district dashboard"),
    "login_prompt": ("请输入区县管理令牌（由 station collector admin-token 给出）。",
                     "Enter the district admin token (from station collector admin-token)."),
    "login_button": ("登录", "Log in"),
    "filter": ("筛选", "Filter"),
    "filter_hint": ("按学校、考场、站点或封签筛选", "Filter by school, room, station or seal"),
    "refreshed": ("最后刷新", "Last refreshed"),
    "refresh_failed": ("刷新失败，将自动重试", "Refresh failed; retrying by itself"),
    "station": ("站点", "Station"),
    "school": ("学校", "School"),
    "room": ("考场", "Room"),
    "heartbeat": ("最近心跳", "Last heartbeat"),
    "precheck": ("最近设备检查", "Last pre-check"),
    "failing": ("未通过项", "Failing checks"),
    "sittings": ("已封场次", "Sittings closed"),
    "files": ("文件（已到/应到）", "Files (arrived/expected)"),
    "bytes": ("数据量（已到/应到）", "Data (arrived/expected)"),
    "seals": ("电子封签", "Seal codes"),
    "never": ("从未", "never"),
    "pass": ("通过", "pass"),
    "warn": ("警告", "warn"),
    "fail": ("未通过", "fail"),
    "none": ("无", "none"),
    "complete": ("已收齐", "complete"),
    "incomplete": ("未收齐", "incomplete"),
    "bad_signature": ("签名无效", "bad signature"),
    "pairing": ("配对新工作站", "Pair a new station"),
    "pairing_hint": ("为一台工作站生成一次性配对码（10 分钟内有效，只能用一次），在工作站的“设置”页输入它，即可拿到本站点的令牌。已有令牌的站点配对后会换用新令牌。",
                     "Make a one-time pairing code for a station (valid 10 minutes, usable once); typed into the station's Set-up page, it gives the station its token. A station that had a token gets a new one."),
    "pairing_button": ("生成配对码", "Make a pairing code"),
    "pairing_code": ("站点 {station} 的配对码：", "Pairing code for station {station}: "),
    "pairing_until": ("有效期至 {until}，只能用一次。", "Valid until {until}, once."),
    "lang_switch": ("English", "中文"),
    "missing_never_prechecked": ("从未做设备检查", "never pre-checked"),
    "missing_precheck_failed": ("设备检查未通过", "pre-check failed"),
    "missing_silent": ("无心跳", "no heartbeat"),
    "missing_sittings_open": ("场次未封存", "sittings not sealed"),
    "missing_uploads_incomplete": ("上传未完成", "uploads incomplete"),
    "missing_stations_missing": ("工作站未登记", "stations not registered"),
    "live": ("实时", "live"),
    "reconnecting": ("连接中断，正在重连…", "connection lost, reconnecting…"),
    "now": ("现在", "now"),
    "tz_note": ("时间为 {tz}", "times in {tz}"),
    "schools_ready": ("学校就绪", "schools ready"),
    "schools_not_ready": ("学校未就绪", "schools not ready"),
    "schools_silent": ("学校失联", "schools silent"),
    "sittings_sealed": ("已封存场次", "sittings sealed"),
    "sittings_complete_of": ("已收齐 {n}", "{n} complete"),
    "by_hand_n": ("U盘交来 {n}", "{n} by hand"),
    "files_in": ("文件 已到/应到", "files arrived/expected"),
    "data_in": ("数据量 已到/应到", "data arrived/expected"),
    "incidents_open": ("未处理应急事件", "incidents open"),
    "rate": ("速率", "rate"),
    "eta": ("预计还需", "ETA"),
    "status": ("状态", "Status"),
    "stations_col": ("工作站（已登记/应有）", "Stations (registered/expected)"),
    "missing": ("缺少什么", "What is missing"),
    "sittings_col": ("场次（收齐/封存）", "Sittings (complete/sealed)"),
    "via": ("方式", "Via"),
    "incidents_col": ("应急事件", "Incidents"),
    "ready": ("就绪", "ready"),
    "not_ready": ("未就绪", "not ready"),
    "silent": ("失联", "silent"),
    "all_in": ("已收齐", "all in"),
    "network": ("网络", "network"),
    "usb": ("U盘", "USB"),
    "expand": ("展开工作站", "show stations"),
    "collapse": ("收起工作站", "hide stations"),
    "only_problems": ("只看有问题的学校", "only schools with problems"),
    "expand_all": ("全部展开", "expand all"),
    "print": ("打印", "Print"),
    "downloads": ("上报表下载", "Forms"),
    "form_upload": ("数据上传情况上报表", "upload-status form"),
    "form_incidents": ("应急事件上报表", "incidents form"),
    "not_listed": ("不在学校名单中", "not in the schools list"),
    "no_school": ("未指定学校", "no school"),
    "ago": ("{n}前", "{n} ago"),
    "incidents_title": ("应急事件", "Incidents"),
    "no_incidents": ("暂无应急事件。", "No incidents."),
    "at": ("发生时间", "Time"),
    "category": ("类别", "Category"),
    "sitting": ("场次", "Sitting"),
    "students": ("涉及学生", "Students"),
    "what": ("事件经过", "What happened"),
    "action": ("处置措施", "What was done"),
    "handled": ("已处理", "handled"),
    "open_incident": ("未处理", "open"),
    "mark_handled": ("标记为已处理", "Mark handled"),
    "mark_failed": ("标记失败：", "Could not mark: "),
    "heartbeat_short": ("心跳", "Heartbeat"),
    "seals_short": ("场次与电子封签", "Sittings and seal codes"),
    "version": ("版本", "Version"),
    "sealed_open": ("{n} 个场次未封存", "{n} sitting(s) not sealed"),
    "no_schools": ("还没有学校或工作站。请用 station collector schools import 导入学校名单，再用 add-station 添加工作站。",
                   "No schools or stations yet. Import the schools (station collector schools import), then add stations (add-station)."),
    "no_stations": ("还没有站点。请在上方为工作站生成配对码，或用 station collector add-station 添加。",
                    "No stations yet. Make a pairing code for a station above, or add it with station collector add-station."),
}


def ui(lang: str) -> dict[str, str]:
    index = 1 if lang == "en" else 0
    return {key: pair[index] for key, pair in UI.items()}
