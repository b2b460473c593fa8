// Contacts read, normalised and hashed on the device (web/src/contacts.js), without a browser:
// numbers out of pasted text, vCards and tables; E.164 as the node stores phone numbers; and
// the hash the node matches, checked against a value computed outside the client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { numbersIn, toE164, prepare, contactHash, callingCodeOf } from '../src/contacts.js';

test('numbers are read from pasted lines, with names beside them and separators between them', () => {
  assert.deepEqual(numbersIn('Li Lei 138 0013 8000\n+86 139-0000-0002, 13900000003;\nsee you'), [
    '138 0013 8000',
    '+86 139-0000-0002',
    '13900000003',
  ]);
});

test('a vCard gives its TEL lines only, folded lines joined and tel: URIs opened', () => {
  const card = 'BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Li 13800000000\r\nTEL;TYPE=CELL:+86 138 0013\r\n 8000\r\nitem1.TEL:0044 20 7946 0958\r\nTEL;VALUE=uri:tel:+1-202-555-0100\r\nEND:VCARD\r\n';
  assert.deepEqual(numbersIn(card), ['+86 138 00138000', '0044 20 7946 0958', '+1-202-555-0100']);
});

test('pasted lines and a picked vCard together give the numbers of both', () => {
  const text = 'Li Lei 138 0013 8000\nBEGIN:VCARD\nFN:Wang 13900000000\nTEL:+86 139 0000 0002\nEND:VCARD\n13900000003';
  assert.deepEqual(numbersIn(text), ['+86 139 0000 0002', '138 0013 8000', '13900000003']);
});

test('a table with a phone column gives that column only', () => {
  const csv = 'Name,Mobile,Birthday\nLi,138 0013 8000,2020-01-01\n"Wang","+44 (0)20 7946 0958",1990-02-03\n';
  assert.deepEqual(numbersIn(csv), ['138 0013 8000', '+44 (0)20 7946 0958']);
});

test('E.164: the country code is added to national numbers, trunk 0 and (0) dropped, 00 read as +', () => {
  assert.equal(toE164('138 0013 8000', '+86'), '+8613800138000');
  assert.equal(toE164('+86 138-0013-8000', '+44'), '+8613800138000');
  assert.equal(toE164('020 7946 0958', '+44'), '+442079460958');
  assert.equal(toE164('+44 (0)20 7946 0958', '+86'), '+442079460958');
  assert.equal(toE164('0044 20 7946 0958', '+86'), '+442079460958');
  assert.equal(toE164('+0 123 4567', '+86'), null);
  assert.equal(toE164('12345', '+86'), null);
  assert.equal(toE164('138 0013 8000', ''), null);
});

test('prepare keeps each number once and counts what is not one', () => {
  assert.deepEqual(prepare('13800138000\n+86 138 0013 8000\n+0 123 4567', '+86'), { numbers: ['+8613800138000'], unreadable: 1 });
});

test('the calling code of my own number is the default for numbers without one', () => {
  assert.equal(callingCodeOf('+8613800138000'), '+86');
  assert.equal(callingCodeOf('+14155550100'), '+1');
  assert.equal(callingCodeOf('+442079460958'), '+44');
  assert.equal(callingCodeOf('+85291234567'), '+852');
  assert.equal(callingCodeOf(null), '+86');
});

test('the hash is lowercase hex SHA-256 of "shanliao-contact/v1:" and the number', async () => {
  // printf 'shanliao-contact/v1:+8613800138000' | sha256sum
  assert.equal(await contactHash('+8613800138000'), 'd4cf2421578d7542418bad69dc6ab2f73b5f0697662dfdddfbbf385da521056b');
});
