"""Every response code of the vendor contract (§4), with its default message.

The Chinese message is the vendor's own wording and is the prefix of every
`message` we send; the English phrase is for our logs and documentation.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    def __new__(cls, value: int, zh: str, en: str) -> Code:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.zh = zh
        obj.en = en
        return obj

    zh: str
    en: str

    SUCCESS = (0, "成功", "success")
    INTERNAL_ERROR = (1, "其他内部错误", "other internal error")
    PARAM_ERROR = (100001, "参数错误", "parameter error")
    DATA_SAVE_FAILED = (100002, "数据保存失败", "data save failed")
    DATA_SYNC_FAILED = (100003, "数据同步失败", "data sync failed")
    DATA_NOT_FOUND = (100004, "数据不存在", "data not found")
    FILE_SAVE_FAILED = (10001, "文件保存失败", "file save failed")
    FILE_DELETE_FAILED = (10002, "文件删除失败", "file delete failed")
    FILE_DATA_NOT_FOUND = (10003, "数据不存在", "data not found")
    DUPLICATE_DATA = (10004, "数据重复", "duplicate data")
    INVALID_DATA = (10005, "数据无效", "invalid data")
    WRONG_VERIFICATION_CODE = (20001, "验证码错误", "wrong verification code")
    VERIFICATION_CODE_EXPIRED = (20002, "验证码已过期", "verification code expired")
    DAILY_CODE_LIMIT = (20003, "今日验证码次数已达上限", "daily verification-code limit reached")
    ATTEMPT_LIMIT = (20004, "尝试次数已达上限", "attempt limit reached")
    AUTH_EXPIRED = (20005, "账号认证已过期", "account authentication expired")
    AUTH_FAILED = (20006, "账号认证失败", "account authentication failed")
    LOGGED_IN_ELSEWHERE = (20007, "账号已在其他设备登录", "account logged in on another device")
    NO_PERMISSION = (20008, "用户无权限", "user has no permission")
    SHARE_EXPIRED = (20009, "分享链接已过期", "share link expired")
    USER_DISABLED = (20010, "用户已禁用", "user disabled")
    NO_BOUND_PHONE = (20011, "用户未绑定手机号", "user has no bound phone number")
    NOT_ADMINISTRATOR = (20012, "用户不是管理员", "user is not an administrator")
    USER_EXISTS = (20013, "用户已存在", "user already exists")
    USER_NOT_FOUND = (20014, "用户不存在", "user does not exist")
    INSTITUTION_NAME_USED = (20015, "机构名称已被使用", "institution name already used")
    INSTITUTION_NOT_FOUND = (20016, "机构不存在", "institution does not exist")
    SHARE_PASSWORD = (20017, "分享需要密码或密码错误", "share needs a password, or the password is wrong")
    UNION_NAME_EXISTS = (20018, "医联体名称已存在", "medical-union name already exists")
    DEPARTMENT_EXISTS = (20019, "科室名称已存在", "department name exists")
    DEVICE_NAME_EXISTS = (20020, "设备名称已存在", "device name already exists")
    DEVICE_TYPE_EXISTS = (20021, "设备类型名称已存在", "device type name already exists")
    SHARE_NO_ACCESS = (20022, "无权访问该分享，请重新扫码", "no access to the share, scan again")
    UNION_NOT_FOUND = (20023, "医联体不存在", "medical union does not exist")
    DEPARTMENT_NOT_FOUND = (20024, "科室不存在", "department does not exist")
    DEVICE_NOT_FOUND = (20025, "设备不存在", "device does not exist")
    DEVICE_TYPE_NOT_FOUND = (20026, "设备类型不存在", "device type does not exist")
    DOCTOR_EXISTS = (20027, "医生已存在", "doctor already exists")
    DOCTOR_NOT_FOUND = (20028, "医生不存在", "doctor does not exist")
    APPLICATION_SUBMITTED = (20029, "申请已提交", "application already submitted")
    INVALID_FORMAT = (20030, "格式错误", "invalid format")
    REQUIRED_EMPTY = (20031, "必填参数为空", "required parameter empty")
    INVALID_WECOM_USER = (20032, "企业微信用户ID无效", "invalid enterprise WeChat user id")
    REPORT_QUERY_FAILED = (30001, "报告查询失败", "report query failed")
    STUDY_ID_NOT_FOUND = (30002, "检查号不存在", "study id does not exist")
    REPORT_NOT_FOUND = (30003, "报告不存在", "report does not exist")
    REPORT_EXISTS = (30004, "报告已存在", "report already exists")
    REPORT_CREATE_FAILED = (30005, "创建报告失败", "creating report failed")
    REPORT_MODIFIED = (30006, "报告已被修改", "report was modified")
    REPORT_UPDATE_FAILED = (30007, "更新报告失败", "updating report failed")
    STUDY_NOT_FOUND = (30008, "检查不存在", "study not found")
    STUDY_NO_PERMISSION = (30009, "无权查看该检查", "no permission to view this study")
    REPORT_LOCKED = (30010, "报告已锁定", "report is locked")
    REPORT_UNLOCK_FAILED = (30011, "无法解锁报告", "cannot unlock report")
    BODY_PART_EXISTS = (30012, "部位已存在", "body part exists")
    BODY_PART_NOT_FOUND = (30013, "部位不存在", "body part does not exist")
    EXAM_ITEM_EXISTS = (30014, "检查项目已存在", "exam item exists")
    EXAM_ITEM_NOT_FOUND = (30015, "检查项目不存在", "exam item does not exist")
    LIVE_SIGNATURE_FAILED = (40001, "生成签名失败", "generating signature failed (live room)")
    LIVE_QUERY_FAILED = (40002, "直播间查询失败", "live room query failed")
    LIVE_UPDATE_FAILED = (40003, "直播间更新失败", "live room update failed")
    LIVE_CANCEL_FAILED = (40004, "直播间取消失败", "live room cancel failed")
    LIVE_NOT_FOUND = (40005, "直播间不存在", "live room not found")
    LIVE_CREATE_FAILED = (40006, "直播间创建失败", "live room creation failed")
    GROUP_CHAT_FAILED = (40007, "群聊创建失败", "group chat creation failed")
    MEETING_STARTED_NO_UPDATE = (40008, "会议已开始，无法修改", "meeting already started, cannot update")
    MEETING_STARTED_NO_CANCEL = (40009, "会议已开始，无法取消", "meeting already started, cannot cancel")
    SUMMARY_LOCK_FAILED = (40010, "锁定会议纪要失败", "locking meeting summary failed")
    TOO_MANY_EXPERTS = (40011, "邀请专家数量超出限制", "too many invited experts")
    MEMBER_LIMIT = (50001, "成员数量已达上限", "member limit reached")
    MEMBER_NO_PERMISSION = (50002, "成员不存在或无权限", "member does not exist or has no permission")
    MEMBER_ID_WRONG = (50003, "成员证件号错误", "member ID number wrong")
    MEMBER_SCAN_LIMIT = (50004, "成员今日扫码次数超限", "member daily scan limit exceeded")
    MEMBER_ID_WRONG_2 = (50005, "成员证件号错误", "member ID number wrong")
    MEMBER_ID_MISMATCH = (50006, "成员身份证不匹配", "member ID card does not match")
    KB_DELETE_FAILED = (60001, "删除知识库内容失败", "deleting knowledge-base content failed")
    FOLDER_EXISTS = (60002, "文件夹已存在", "folder already exists")
    TEXT_TITLE_EXISTS = (60003, "文本标题已存在", "text title already exists")
    FOLDER_OR_TITLE_EMPTY = (60004, "文件夹名称或文本标题为空", "folder name or text title empty")
    MODULE_DELETED = (60005, "模块已删除", "module already deleted")
    NESTING_LIMIT = (60006, "嵌套层级超出限制", "nesting level limit exceeded")
    PATIENT_QUERY_FAILED = (70001, "患者查询失败", "patient query failed")
    USER_QUERY_FAILED = (80001, "用户查询失败", "user query failed")
    INVALID_TOKEN = (90001, "无效的token", "invalid token")
    INVALID_SIGNATURE = (90002, "签名无效", "invalid signature")
    FETCH_LIMIT = (90003, "超出最大获取次数", "maximum fetch count exceeded")
