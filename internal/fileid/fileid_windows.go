//go:build windows

package fileid

import (
	"io/fs"
	"strconv"
	"syscall"
)

// of opens the file for attributes only, sharing everything, so a scanner still writing
// it or Explorer holding it is not disturbed; FILE_FLAG_OPEN_REPARSE_POINT keeps a link
// from being followed and FILE_FLAG_BACKUP_SEMANTICS allows folders.
func of(path string, _ fs.FileInfo) string {
	p, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return ""
	}
	const fileReadAttributes = 0x80
	h, err := syscall.CreateFile(p, fileReadAttributes,
		syscall.FILE_SHARE_READ|syscall.FILE_SHARE_WRITE|syscall.FILE_SHARE_DELETE, nil,
		syscall.OPEN_EXISTING, syscall.FILE_FLAG_BACKUP_SEMANTICS|syscall.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return ""
	}
	defer syscall.CloseHandle(h)
	var info syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(h, &info); err != nil {
		return ""
	}
	idx := uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow)
	if idx == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(info.VolumeSerialNumber), 16) + ":" + strconv.FormatUint(idx, 16)
}
